"""The incremental aggregates (etl.marts.build) and the atomic publish of warehouse/marts.duckdb."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.contract import DATASETS
from etl.duck import connect
from etl.errors import PublishError
from etl.lake import (
    MANIFEST_COLUMNS,
    QUALITY_COLUMNS,
    copy_to_parquet,
    file_stem,
    manifest_dir,
    quality_dir,
    raw_dir,
    validated_dir,
)
from etl.marts import aggregates as marts
from etl.marts.aggregates import METER_MONTHLY_COLUMNS, build, partition_path, read_watermark
from etl.marts.publish import build_file, building_dir, publish, swap_in
from etl.models import raw_columns
from etl.settings import Settings
from etl.vee import run as vee

D = Decimal


def _write(
    con: duckdb.DuckDBPyConnection, settings: Settings, dest: Path, columns: dict[str, str], rows: list[dict]
) -> None:
    con.execute(f"create or replace temp table rows ({', '.join(f'{c} {t}' for c, t in columns.items())})")
    if rows:
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"insert into rows values ({marks})", [[r.get(c) for c in columns] for r in rows])
    copy_to_parquet(con, "select * from rows", dest, settings)


class Lake:
    """Writes raw Parquet and manifest rows the way ingestion does (etl/lake.py's layout)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seq = 0
        self.con = connect(settings)

    def _partition(self, dataset: str, row: dict, snapshot: str | None) -> str:
        if DATASETS[dataset].is_reference:
            return f"snapshot={snapshot}"
        if dataset == "bill_lines":
            return f"period={row['billing_period']}"
        column = DATASETS[dataset].partition_by
        return f"period={str(row[column])[:7]}"

    def drop(
        self, dataset: str, rows: list[dict], snapshot: str | None = None, status: str = "INGESTED"
    ) -> int:
        """One landing file's worth of rows; returns its ingest_seq."""
        self.seq += 1
        file_hash = hashlib.sha256(f"{dataset}-{self.seq}".encode()).hexdigest()
        stem = file_stem(self.seq, file_hash)
        parts: dict[str, list[dict]] = defaultdict(list)
        for i, row in enumerate(rows if status == "INGESTED" else []):
            lineage = {
                "_source_file": f"{dataset}_{self.seq}.csv",
                "_line_no": i + 2,
                "_ingest_seq": self.seq,
            }
            extra = {"_snapshot_date": snapshot} if snapshot else {}
            parts[self._partition(dataset, row, snapshot)].append(lineage | extra | row)
        for partition, part_rows in parts.items():
            dest = raw_dir(self.settings, dataset) / partition / f"{stem}.parquet"
            _write(self.con, self.settings, dest, raw_columns(dataset), part_rows)
        manifest = {
            "file_hash": file_hash,
            "dataset": dataset,
            "source_file": f"{DATASETS[dataset].folder}/{dataset}_{self.seq}.csv",
            "status": status,
            "rows_in": len(rows),
            "rows_accepted": len(rows) if status == "INGESTED" else 0,
            "rows_quarantined": 0,
            "partitions": sorted(parts),
            "run_id": "test",
            "ingested_at": datetime(2025, 3, 1),
            "ingest_seq": self.seq,
        }
        _write(
            self.con,
            self.settings,
            manifest_dir(self.settings) / f"{stem}.parquet",
            MANIFEST_COLUMNS,
            [manifest],
        )
        return self.seq

    def meter_month(self, period: str, energy: dict[str, str]) -> None:
        """validated/meter_monthly of one period, as VEE writes it."""
        rows = [
            {
                "period": period,
                "meter_id": m,
                "channel": "ACTIVE_IMPORT",
                "energy_kwh": kwh,
                "estimated_energy_kwh": "0",
                "missing_intervals": 0,
            }
            for m, kwh in energy.items()
        ]
        dest = validated_dir(self.settings, "meter_monthly") / f"period={period}" / "data.parquet"
        _write(self.con, self.settings, dest, METER_MONTHLY_COLUMNS, rows)

    def quality(self, run_id: str, stage: str, check: str, passed: bool) -> None:
        row = {"run_id": run_id, "stage": stage, "suite": f"{stage}.test", "check_name": check}
        row |= {
            "severity": "warning",
            "rows_checked": 10,
            "rows_failed": 0 if passed else 1,
            "passed": passed,
        }
        row |= {"checked_at": datetime(2025, 3, 1, 12)}
        _write(
            self.con,
            self.settings,
            quality_dir(self.settings) / run_id / f"{stage}.parquet",
            QUALITY_COLUMNS,
            [row],
        )


def bill_line(
    period: str, customer: str, kwh: str, amount: str, export: str | None = None, **kw: Any
) -> dict:
    return {
        "export_id": export or f"CIS-{period}-R1",
        "export_version": 1,
        "billing_period": period,
        "bill_id": f"B-{customer}-{period}",
        "line_no": 1,
        "customer_id": customer,
        "bill_type": "REGULAR",
        "tariff_code": "RES",
        "component": "BLOCK_1",
        "kwh": kwh,
        "amount_vnd": amount,
        "vat_vnd": "0",
    } | kw


def payment(pid: str, customer: str, paid_at: str, amount: str, channel: str) -> dict:
    return {
        "payment_id": pid,
        "bill_id": "B",
        "customer_id": customer,
        "paid_at": paid_at,
        "amount_vnd": amount,
        "channel": channel,
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", threads=1, memory_limit="1GB")


@pytest.fixture
def lake(settings: Settings) -> Iterator[Lake]:
    """Two regions, January and February 2025: references, bills, payments and validated energy."""
    lake = Lake(settings)
    customers = [
        {
            "customer_id": "C1",
            "customer_class": "RESIDENTIAL",
            "tariff_code": "RES",
            "region_code": "R1",
            "dt_id": "D1",
        },
        {
            "customer_id": "C2",
            "customer_class": "RESIDENTIAL",
            "tariff_code": "RES",
            "region_code": "R2",
            "dt_id": "D2",
        },
    ]
    lake.drop("customers", [c | {"connected_on": "2020-01-01"} for c in customers], snapshot="2025-01-01")
    network = [("NB", "BOUNDARY", None, "R1"), ("NF1", "FEEDER", "NB", "R1"), ("D1", "DT", "NF1", "R1")]
    lake.drop(
        "network",
        [{"node_id": n, "node_type": t, "parent_id": p, "region_code": r} for n, t, p, r in network],
        snapshot="2025-01-01",
    )
    meters = [("MB", "BOUNDARY", "NB"), ("MF1", "FEEDER", "NF1"), ("MD1", "DT", "D1")]
    lake.drop(
        "meters",
        [
            {"meter_id": m, "role": r, "node_id": n, "reading_mode": "INTERVAL", "multiplier": "1"}
            | {"register_digits": 6, "installed_on": "2020-01-01"}
            for m, r, n in meters
        ],
        snapshot="2025-01-01",
    )
    lake.drop(
        "plans",
        [{"year": 2025, "region_code": "ALL", "kpi": "KWH_SOLD", "target": "1000"}],
        snapshot="2025-01-01",
    )
    lake.drop(
        "bill_lines",
        [bill_line("2025-01", "C1", "100", "200000"), bill_line("2025-01", "C2", "50", "150000")],
    )
    lake.drop(
        "bill_lines", [bill_line("2025-02", "C1", "80", "160000"), bill_line("2025-02", "C2", "40", "120000")]
    )
    lake.drop(
        "payments",
        [
            payment("P1", "C1", "2025-02-05 09:00:00", "216000", "CARD"),
            payment("P2", "C2", "2025-02-06 09:00:00", "162000", "CASH_COUNTER"),
        ],
    )
    lake.meter_month("2025-01", {"MB": "200", "MF1": "110", "MD1": "105"})
    lake.meter_month("2025-02", {"MB": "150", "MF1": "90", "MD1": "85"})
    yield lake
    lake.con.close()


def company_kpis(path: Path, period: str) -> tuple:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            """
            select kwh_sold, kwh_sold_ytd, plan_attainment_pct, kwh_received, cashless_customer_pct
            from mart_kpi_monthly where region_code = 'ALL' and period = ?
            """,
            [period],
        ).fetchone()
    finally:
        con.close()


def sales_partition(settings: Settings, period: str) -> list[tuple]:
    path = partition_path(settings, "int_sales__monthly", period)
    con = duckdb.connect()
    rows = con.execute(f"select region_code, kwh_sold, revenue_vnd from '{path}' order by all").fetchall()
    con.close()
    return rows


def cashless_partition(settings: Settings, period: str) -> list[tuple]:
    path = partition_path(settings, "int_cashless__monthly", period)
    con = duckdb.connect()
    columns = "region_code, paying_customers, cashless_customers, paid_amount_vnd"
    query = f"select {columns} from '{path}' order by all"
    rows = con.execute(query).fetchall()
    con.close()
    return rows


def snapshot_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_writes_monthly_parts_and_the_watermark(settings: Settings, lake: Lake) -> None:
    report = build(settings, "run-1")
    assert report.periods_rebuilt == ["2025-01", "2025-02"]
    assert read_watermark(settings) == lake.seq == 7
    assert sales_partition(settings, "2025-01") == [
        ("R1", D("100"), D("200000")),
        ("R2", D("50"), D("150000")),
    ]
    assert report.rows["int_cashless__monthly"] == 2  # February, R1 and R2
    assert not partition_path(settings, "int_cashless__monthly", "2025-01").exists()


def test_a_rerun_without_new_files_changes_nothing(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    before = snapshot_files(settings.lake / "aggregates")
    report = build(settings, "run-2")
    assert report.periods_rebuilt == []
    assert snapshot_files(settings.lake / "aggregates") == before


def test_a_new_export_version_rebuilds_every_period_of_the_old_one(settings: Settings, lake: Lake) -> None:
    lake.drop("bill_lines", [bill_line("2025-01", "C1", "5", "10000", export="CIS-X")])
    lake.drop("bill_lines", [bill_line("2025-02", "C1", "7", "14000", export="CIS-X")])
    build(settings, "run-1")
    since = read_watermark(settings)
    # version 2 of CIS-X re-issues only February: January loses CIS-X's line
    lake.drop("bill_lines", [bill_line("2025-02", "C1", "6", "12000", export="CIS-X", export_version=2)])
    assert marts.affected_periods(settings, since) == {"2025-01", "2025-02"}
    report = build(settings, "run-2")
    assert report.periods_rebuilt == ["2025-01", "2025-02"]
    assert sales_partition(settings, "2025-01") == [
        ("R1", D("100"), D("200000")),
        ("R2", D("50"), D("150000")),
    ]
    assert sales_partition(settings, "2025-02") == [
        ("R1", D("86"), D("172000")),
        ("R2", D("40"), D("120000")),
    ]


def test_a_period_left_without_data_loses_its_parts(settings: Settings, lake: Lake) -> None:
    lake.drop("bill_lines", [bill_line("2024-12", "C1", "5", "10000", export="CIS-X")])
    build(settings, "run-1")
    assert partition_path(settings, "int_sales__monthly", "2024-12").exists()
    lake.drop("bill_lines", [bill_line("2025-02", "C1", "6", "12000", export="CIS-X", export_version=2)])
    assert build(settings, "run-2").periods_rebuilt == ["2024-12", "2025-02"]
    assert not partition_path(settings, "int_sales__monthly", "2024-12").parent.exists()


def test_new_payments_touch_their_month_and_the_month_a_payment_left(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    since = read_watermark(settings)
    lake.drop("payments", [payment("P1", "C1", "2025-03-01 08:00:00", "216000", "CARD")])
    assert marts.affected_periods(settings, since) == {"2025-02", "2025-03"}
    build(settings, "run-2")
    assert cashless_partition(settings, "2025-02") == [("R2", 1, 0, D("162000"))]
    assert cashless_partition(settings, "2025-03") == [("R1", 1, 1, D("216000"))]


def test_a_reference_snapshot_touches_every_period(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    since = read_watermark(settings)
    moved = {"customer_id": "C2", "customer_class": "RESIDENTIAL", "tariff_code": "RES", "region_code": "R1"}
    lake.drop("customers", [moved | {"dt_id": "D1", "connected_on": "2020-01-01"}], snapshot="2025-03-01")
    assert marts.affected_periods(settings, since) == {"2025-01", "2025-02"}
    build(settings, "run-2")
    assert sales_partition(settings, "2025-01") == [("R1", D("150"), D("350000"))]


def test_a_rejected_file_touches_nothing_but_is_processed(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    seq = lake.drop("bill_lines", [bill_line("2025-02", "C1", "1", "1")], status="REJECTED")
    report = build(settings, "run-2")
    assert (report.periods_rebuilt, read_watermark(settings)) == ([], seq)


def vee_run(settings: Settings, periods: list[str]) -> None:
    """Record a VEE run that rebuilt `periods`, as VEE records it (its data is the lake fixture's)."""
    vee._write_watermark(settings, 100, "vee", periods)


def reading_file(lake: Lake) -> int:
    return lake.drop(
        "interval_reads",
        [{"meter_id": "MB", "interval_start": "2025-02-10 00:00:00", "interval_minutes": 30, "kwh": "1"}],
    )


def test_readings_touch_nothing_until_vee_rebuilt_their_months(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    since = read_watermark(settings)
    reading_file(lake)
    assert marts.affected_periods(settings, since) == set()
    assert build(settings, "run-2").periods_rebuilt == []


def test_the_months_vee_rebuilt_are_rebuilt_once(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    reading_file(lake)
    vee_run(settings, ["2025-02"])
    report = build(settings, "run-2")
    assert report.periods_rebuilt == ["2025-02"]
    assert json.loads(marts.watermark_path(settings).read_text())["vee_generation"] == 1
    assert build(settings, "run-3").periods_rebuilt == []


def test_months_handed_forward_are_rebuilt(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    assert build(settings, "run-2", vee_periods=["2025-01"]).periods_rebuilt == ["2025-01"]


def test_a_vee_run_whose_aggregates_crashed_is_caught_up_by_the_next_build(
    settings: Settings, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings, "run-1")
    vee_run(settings, ["2025-01"])
    with monkeypatch.context() as patch:
        patch.setattr(marts, "_write_partition", _failing_write)
        with pytest.raises(duckdb.IOException):
            build(settings, "run-2", vee_periods=["2025-01"])
    # the next VEE run rebuilt another month; its aggregates are handed that month only
    vee_run(settings, ["2025-02"])
    assert build(settings, "run-3", vee_periods=["2025-02"]).periods_rebuilt == ["2025-01", "2025-02"]


def test_the_aggregates_never_write_under_validated(settings: Settings, lake: Lake) -> None:
    reading_file(lake)
    vee_run(settings, ["2025-01", "2025-02"])
    before = snapshot_files(settings.lake / "validated")
    build(settings, "run-1")
    build(settings, "run-2", full=True)
    assert snapshot_files(settings.lake / "validated") == before


def test_the_marts_do_not_import_vee() -> None:
    for path in Path(marts.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        ]
        assert not [m for m in imported if m and m.startswith("etl.vee")], path.name


def _failing_write(con: duckdb.DuckDBPyConnection, settings: Settings, model: str, period: str) -> int:
    raise duckdb.IOException("disk full")


def test_the_watermark_moves_only_after_every_period_is_rebuilt(
    settings: Settings, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = marts._write_partition

    def failing(con: duckdb.DuckDBPyConnection, settings: Settings, model: str, period: str) -> int:
        if period == "2025-02":
            raise duckdb.IOException("disk full")
        return write(con, settings, model, period)

    monkeypatch.setattr(marts, "_write_partition", failing)
    with pytest.raises(duckdb.IOException):
        build(settings, "run-1")
    assert read_watermark(settings) == 0
    monkeypatch.setattr(marts, "_write_partition", write)
    assert build(settings, "run-2").periods_rebuilt == ["2025-01", "2025-02"]


def test_full_rebuild_equals_the_incremental_one(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    lake.drop(
        "bill_lines", [bill_line("2025-02", "C1", "-10", "-20000", bill_type="ADJUSTMENT", bill_id="A1")]
    )
    lake.drop("payments", [payment("P3", "C1", "2025-01-30 08:00:00", "5000", "E_WALLET")])
    build(settings, "run-2")
    incremental = snapshot_files(settings.lake / "aggregates")
    shutil.rmtree(settings.lake / "aggregates")
    build(settings, "run-3", full=True)
    full = snapshot_files(settings.lake / "aggregates")

    # the key index is a set kept in one file per build that adds keys (tests/test_marts_keys.py)
    def kept(files: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in files.items() if k != "_watermark.json" and not k.startswith("_keys/")}

    assert kept(full) == kept(incremental)
    assert any(k.startswith("_keys/payments/") for k in full)


def test_publish_needs_only_the_aggregates(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    shutil.rmtree(settings.lake / "raw")
    shutil.rmtree(settings.lake / "validated")
    path = publish(settings, "run-1")
    assert path == settings.marts_path
    # January + February = 270 kWh of a 1,000 kWh plan; February's boundary meter received 150 kWh
    assert company_kpis(path, "2025-02") == (D("120"), D("270"), 27.0, D("150"), 50.0)
    assert not list(building_dir(settings).iterdir())
    assert not settings.marts_path.with_name("marts.duckdb.wal").exists()


def test_publish_on_an_empty_lake_gives_empty_marts(settings: Settings) -> None:
    path = publish(settings, "run-0")
    con = duckdb.connect(str(path), read_only=True)
    counts = {
        t: con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
        for t in (
            "mart_kpi_monthly",
            "mart_sales_monthly",
            "mart_energy_balance_monthly",
            "mart_data_quality",
        )
    }
    columns = con.execute(
        "select count(*) from duckdb_columns() where table_name = 'mart_kpi_monthly'"
    ).fetchone()
    con.close()
    assert counts == dict.fromkeys(counts, 0)
    assert columns == (32,)  # 29, region_name (added at publish) and the two calendar-month columns


def test_swap_in_refreshes_the_data_quality_mart(settings: Settings, lake: Lake) -> None:
    lake.quality("run-1", "raw", "expect_raw", passed=True)
    build(settings, "run-1")
    new_file = build_file(settings, "run-1")
    # the pipeline checks the new file between the two steps and records the result
    lake.quality("run-1", "marts", "expect_marts", passed=False)
    swap_in(settings, new_file, "run-1")
    con = duckdb.connect(str(settings.marts_path), read_only=True)
    rows = con.execute(
        "select run_id, stage, check_name, passed from mart_data_quality order by stage"
    ).fetchall()
    con.close()
    assert rows == [("run-1", "marts", "expect_marts", False), ("run-1", "raw", "expect_raw", True)]
    assert not new_file.exists()


READER = textwrap.dedent(
    """
    import sys
    import duckdb

    con = duckdb.connect(sys.argv[1], read_only=True)
    query = "select sum(kwh_sold) from mart_kpi_monthly where region_code = 'ALL'"
    print(con.execute(query).fetchone()[0], flush=True)
    sys.stdin.readline()
    # a table not read before the swap comes from disk, not from the reader's cache
    print(con.execute("select sum(kwh_sold) from mart_sales_monthly").fetchone()[0], flush=True)
    print(con.execute(query).fetchone()[0], flush=True)
    """
)


def test_a_reader_of_the_old_file_keeps_working_and_new_readers_see_the_new(
    settings: Settings, lake: Lake
) -> None:
    build(settings, "run-1")
    publish(settings, "run-1")
    inode = settings.marts_path.stat().st_ino
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(settings.marts_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "270.000000"
        lake.drop("bill_lines", [bill_line("2025-02", "C1", "30", "60000", export="CIS-Y")])
        build(settings, "run-2")
        publish(settings, "run-2")
        assert company_kpis(settings.marts_path, "2025-02")[1] == D("300")
        assert settings.marts_path.stat().st_ino != inode
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert [reader.stdout.readline().strip() for _ in range(2)] == ["270.000000", "270.000000"]
        assert reader.wait(timeout=30) == 0, reader.stderr.read() if reader.stderr else ""
    finally:
        reader.kill()
        reader.wait()


def test_a_failed_build_leaves_the_published_file_untouched(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    publish(settings, "run-1")
    published = settings.marts_path.read_bytes()
    partition_path(settings, "int_sales__monthly", "2025-02").write_bytes(b"not parquet")
    with pytest.raises(PublishError, match="building the marts of run run-2"):
        publish(settings, "run-2")
    assert settings.marts_path.read_bytes() == published
    assert company_kpis(settings.marts_path, "2025-02")[1] == D("270")
    assert not list(building_dir(settings).iterdir())
