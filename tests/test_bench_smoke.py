"""The benchmark harness's pure parts: figures arithmetic, home cloning, and the pandas KPI path.

Nothing here times anything; the pandas KPIs are checked on a tiny hand-made lake with hand-computed
figures, and against a copy with one value changed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bench import homes, pandas_kpi
from bench.measure import (
    Measurement,
    customers_for,
    fit_exponent,
    memory_bytes,
    parse_sizes,
    parse_vmhwm,
    size_label,
    summarize,
)
from bench.results import MARK_END, MARK_START, replace_marked, size_ratios, targets
from bench.run import month_alone, parse_only, parse_repeats
from etl.lake import MANIFEST_COLUMNS
from etl.marts.aggregates import METER_MONTHLY_COLUMNS
from etl.models import raw_columns
from etl.settings import Settings

STATUS = """Name:\tpython
VmPeak:\t  912344 kB
VmHWM:\t  523160 kB
VmRSS:\t  401228 kB
"""


def test_parse_vmhwm_reads_the_peak_in_bytes() -> None:
    assert parse_vmhwm(STATUS) == 523160 * 1024
    assert parse_vmhwm("Name:\tpython\nVmRSS:\t 1 kB\n") is None


def _run(seconds: float, rss: int, quality: float = 0.0) -> Measurement:
    return Measurement("ingest", seconds, seconds + 1, rss, rows=1000, quality_seconds=quality)


def test_summarize_takes_medians_and_the_worst_peak() -> None:
    s = summarize([_run(10.0, 300, 1.0), _run(30.0, 100, 2.0), _run(20.0, 200, 6.0)])
    assert s["seconds"] == 20.0
    assert s["process_seconds"] == 21.0
    assert s["rows_per_s"] == 50.0
    assert s["peak_rss_bytes"] == 300
    assert s["quality_seconds"] == 2.0
    assert s["quality_share"] == 0.1
    assert s["seconds_all"] == [10.0, 30.0, 20.0]


def test_fit_exponent_of_linear_and_quadratic_costs() -> None:
    assert fit_exponent([1, 3, 10], [2.0, 6.0, 20.0]) == pytest.approx(1.0, abs=1e-12)
    assert fit_exponent([1, 3, 10], [2.0, 18.0, 200.0]) == pytest.approx(2.0, abs=1e-12)
    assert fit_exponent([1], [5.0]) is None
    assert fit_exponent([1, 2], [5.0, None]) is None  # type: ignore[list-item]


def test_sizes_labels_customers_and_memory_limits() -> None:
    assert parse_sizes("1.0, 0.1,0.3,0.1") == [0.1, 0.3, 1.0]
    with pytest.raises(ValueError, match="positive"):
        parse_sizes("0.1,-1")
    assert [size_label(s) for s in (0.01, 1, 0.3)] == ["0.01", "1.0", "0.3"]
    assert [customers_for(s) for s in (0.01, 0.1, 0.3, 1.0)] == [4_800, 48_000, 144_000, 480_000]
    assert memory_bytes("4GB") == 4_000_000_000
    assert memory_bytes("512MiB") == 512 * 1024**2
    with pytest.raises(ValueError, match="cannot read"):
        memory_bytes("lots")


def test_parse_only_expands_aliases_in_run_order() -> None:
    assert parse_only("vee,ingest") == ["ingest", "vee"]
    assert parse_only("quality,bare_copy") == ["ingest", "vee", "publish", "bare_copy"]
    with pytest.raises(ValueError, match="unknown benchmark item 'vea'"):
        parse_only("vea")


def test_parse_repeats_gives_one_count_per_size() -> None:
    assert parse_repeats("3", 3) == [3, 3, 3]
    assert parse_repeats("3,3,1", 3) == [3, 3, 1]
    with pytest.raises(ValueError, match="2 counts for 3 sizes"):
        parse_repeats("3,1", 3)
    with pytest.raises(ValueError, match="at least 1"):
        parse_repeats("0", 1)
    with pytest.raises(ValueError, match="not a number"):
        parse_repeats("three", 1)


def test_ratios_and_targets_of_one_size() -> None:
    stage = {"seconds": 10.0, "quality_seconds": 2.0, "rows": 800, "peak_rss_bytes": 2 * 1024**3}
    result: dict[str, Any] = {
        "customers": 480_000,
        "stages": {
            "ingest": {**stage, "quality_share": 0.2},
            "vee": {**stage, "quality_share": 0.2},
            "marts": {"seconds": 4.0},
            "publish": {"seconds": 3.0, "quality_seconds": 1.0, "quality_share": 1 / 3},
        },
        "baselines": {
            "bare_copy": {"seconds": 4.0, "rows": 800},  # 200 rows/s against ingest's 100
            "bare_dedupe": {"seconds": 2.0},
            "bare_dedupe_by_month": {"seconds": 5.0},
            "pandas_kpi": {"seconds": 36.0, "comparison": {"equal": True}},
            "sources": {"meters": 50, "days": 31, "values": 148_800, "csv_seconds": 1.0,
                        "nem12_seconds": 2.5, "csv_values_per_second": 148_800.0,
                        "nem12_values_per_second": 59_520.0, "ratio": 0.4},
        },
        "truth": {"landing files": {"ok": True, "rows": 9, "figures": 9}},
    }  # fmt: skip
    r = size_ratios(result)
    assert r["ingest_vs_bare_copy"] == 0.5
    assert r["vee_vs_bare_dedupe"] == 4.0
    assert r["vee_vs_bare_dedupe_by_month"] == 1.6
    assert r["meterflow_kpi_seconds"] == 6.0
    assert r["pandas_vs_meterflow"] == 6.0
    assert r["scratch_seconds"] == 27.0
    met = {t["target"]: t["met"] for t in targets({"1.0": result}, "4GB")}
    assert met["ingest rows/s vs bare COPY"] is True
    assert met["VEE time vs bare dedupe by month"] is True  # 1.6x against at most 2x
    assert met["pandas time (KPIs) vs every mart built (aggregates + publish)"] is True
    # the marts checks (1 s) against the whole marts build (aggregates 4 s + publish 3 s): 14 %
    assert met["data quality share of the marts build (aggregates + publish)"] is True
    assert met["peak RSS, largest stage (ingest) vs memory_limit + 1 GB"] is True  # 2 GiB against 5 GB
    assert met["month close (meterflow run)"] is None
    assert met["marts and lake equal the generator's truth"] is True
    assert met["NEM12 values/s vs contract CSV"] is False  # 0.4x against at least 0.5x
    result["truth"]["kpis_company"] = {"ok": False, "rows": 21, "figures": 400}
    met = {t["target"]: t["met"] for t in targets({"1.0": result}, "4GB")}
    assert met["marts and lake equal the generator's truth"] is False


def test_mart_kpi_monthly_alone_is_set_against_pandas() -> None:
    result: dict[str, Any] = {
        "customers": 48_000,
        "baselines": {"pandas_kpi": {"seconds": 30.0}},
        "stages": {},
    }
    assert size_ratios(result)["pandas_vs_kpi_alone"] is None
    assert not [t for t in targets({"0.1": result}, "4GB") if "alone" in t["target"]]
    result["baselines"]["kpi_alone"] = {"seconds": 5.0}
    assert size_ratios(result)["pandas_vs_kpi_alone"] == 6.0
    [alone] = [t for t in targets({"0.1": result}, "4GB") if "alone" in t["target"]]
    assert (alone["value"], alone["limit"], alone["met"]) == (6.0, 5.0, True)
    result["baselines"]["kpi_alone"] = {"seconds": 10.0}
    [alone] = [t for t in targets({"0.1": result}, "4GB") if "alone" in t["target"]]
    assert (alone["value"], alone["met"]) == (3.0, False)


def test_replace_marked_fills_the_results_block_only() -> None:
    text = f"# Benchmarks\n\n{MARK_START}\n_figures pending_\n{MARK_END}\n\nAfter.\n"
    assert replace_marked(text, "| a |\n") == f"# Benchmarks\n\n{MARK_START}\n| a |\n{MARK_END}\n\nAfter.\n"
    with pytest.raises(ValueError, match="no <!-- bench:results:start -->"):
        replace_marked("# nothing to fill\n", "x")


def test_clone_home_links_parquet_and_landing_and_copies_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = {
        "landing/readings/interval_reads_20250901_hes1.csv": "a",
        "landing/billing/bill_lines_20250901.csv": "b",
        "lake/raw/interval_reads/period=2025-09/000000001_ab.parquet": "c",
        "lake/validated/_watermark.json": "{}",
        "warehouse/marts.duckdb": "d",
        "truth/drops.json": "{}",
        "tmp/duckdb/spill.tmp": "e",
    }
    for rel, body in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(body)
    dest = homes.clone_home(
        src, tmp_path / "dest", landing_files=["readings/interval_reads_20250901_hes1.csv"]
    )
    same = {
        rel: (dest / rel).stat().st_ino == (src / rel).stat().st_ino for rel in files if (dest / rel).exists()
    }
    assert same == {
        "landing/readings/interval_reads_20250901_hes1.csv": True,
        "lake/raw/interval_reads/period=2025-09/000000001_ab.parquet": True,
        "lake/validated/_watermark.json": False,
        "warehouse/marts.duckdb": False,
    }
    with pytest.raises(homes.BenchError, match="it exists"):
        homes.clone_home(src, dest)


def test_clone_state_brings_the_lake_but_leaves_the_landing_files_untouched(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in ("landing/billing/a.csv", "lake/raw/x/period=2025-09/1.parquet", "state/published.json"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    dest = homes.clone_home(src, tmp_path / "dest", landing=False)
    assert not (dest / "landing").exists()
    landed = tmp_path / "landed"
    homes.add_landing_files(src, landed, ["billing/a.csv"])
    before = (src / "landing/billing/a.csv").stat().st_ctime_ns
    homes.clone_state(src, landed)
    assert (landed / "state/published.json").read_text() == "state/published.json"
    assert (landed / "lake/raw/x/period=2025-09/1.parquet").stat().st_ino == (
        src / "lake/raw/x/period=2025-09/1.parquet"
    ).stat().st_ino
    # no new link to a landing file: its ctime, which meterflow's hash cache keys on, stays
    assert (src / "landing/billing/a.csv").stat().st_ctime_ns == before


def test_month_drops_from_truth_or_file_names(tmp_path: Path) -> None:
    (tmp_path / "landing" / "reference").mkdir(parents=True)
    (tmp_path / "landing" / "readings").mkdir(parents=True)
    for rel in (
        "reference/customers_20240101.csv",
        "readings/interval_reads_20240201_hes1.csv.gz",
        "readings/interval_reads_20240101_hes1.csv",
        "reference/notes.csv",
    ):
        (tmp_path / "landing" / rel).write_text("x")
    assert homes.month_drops(tmp_path) == {
        "2024-01": [
            "reference/notes.csv",
            "readings/interval_reads_20240101_hes1.csv",
            "reference/customers_20240101.csv",
        ],
        "2024-02": ["readings/interval_reads_20240201_hes1.csv.gz"],
    }
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "drops.json").write_text(json.dumps({"2024-02": ["b"], "2024-01": ["a"]}))
    drops = homes.month_drops(tmp_path)
    assert drops == {"2024-01": ["a"], "2024-02": ["b"]}
    assert homes.files_until(drops, 1) == ["a"]
    assert month_alone(
        {
            "2024-01": ["reference/meters_20240101.csv", "readings/r_20240101.csv"],
            "2024-02": ["billing/b_20240201.csv", "readings/r_20240201.csv", "reference/meters_20240201.csv"],
        },
        "2024-02",
    ) == ["reference/meters_20240101.csv", "reference/meters_20240201.csv", "readings/r_20240201.csv"]


# -- the pandas KPI path on a hand-made lake -------------------------------------------------------------

SEQ = iter(range(1, 1000))


def write_raw(settings: Settings, dataset: str, partition: str, rows: list[dict[str, Any]]) -> int:
    """One committed raw file (Parquet + manifest row) of `rows`, lineage filled in; returns its seq."""
    seq = next(SEQ)
    stem = f"{seq:09d}_{seq:064x}"
    columns = raw_columns(dataset)
    con = duckdb.connect()
    con.execute("create table t (" + ", ".join(f'"{n}" {t}' for n, t in columns.items()) + ")")
    for line_no, row in enumerate(rows, start=2):
        full = {"_source_file": f"{dataset}/{seq}.csv", "_line_no": line_no, "_ingest_seq": seq, **row}
        if "_snapshot_date" in columns:
            full.setdefault("_snapshot_date", partition.removeprefix("snapshot="))
        names = list(full)
        con.execute(
            "insert into t ("
            + ", ".join(f'"{n}"' for n in names)
            + ") values ("
            + ", ".join("?" * len(names))
            + ")",
            [full[n] for n in names],
        )
    dest = settings.lake / "raw" / dataset / partition / f"{stem}.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy t to '{dest}' (format parquet)")
    manifest = settings.lake / "manifest" / f"{stem}.parquet"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    cols = ", ".join(
        f"null::{t} as {n}" for n, t in MANIFEST_COLUMNS.items() if n not in ("status", "ingest_seq")
    )
    con.execute(
        f"copy (select {cols}, 'INGESTED' as status, {seq} as ingest_seq) to '{manifest}' (format parquet)"
    )
    return seq


def write_monthly(settings: Settings, period: str, energy: dict[str, float]) -> None:
    """Validated meter months of ACTIVE_IMPORT energy, every count 0, in the validated layer's columns."""
    dest = settings.lake / "validated" / "meter_monthly" / f"period={period}" / "data.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    columns = ", ".join(f"{name} {type_}" for name, type_ in METER_MONTHLY_COLUMNS.items())
    con.execute(f"create table m ({columns})")
    defaults = {c: 0 for c in METER_MONTHLY_COLUMNS} | {"channel": "ACTIVE_IMPORT"}
    rows = [
        defaults
        | {"period": period, "meter_id": m}
        | dict.fromkeys(("recorded_kwh", "delivered_kwh", "energy_kwh"), e)
        for m, e in energy.items()
    ]
    marks = ", ".join("?" for _ in METER_MONTHLY_COLUMNS)
    con.executemany(f"insert into m values ({marks})", [[r[c] for c in METER_MONTHLY_COLUMNS] for r in rows])
    con.execute(f"copy m to '{dest}' (format parquet)")


def bill(export: str, version: int, period: str, bill_id: str, line: int, customer: str, kwh: int,
         amount: int, bill_type: str = "REGULAR") -> dict[str, Any]:  # fmt: skip
    return {
        "export_id": export,
        "export_version": version,
        "billing_period": period,
        "bill_id": bill_id,
        "line_no": line,
        "customer_id": customer,
        "bill_type": bill_type,
        "kwh": kwh,
        "amount_vnd": amount,
    }


def pay(payment: str, customer: str, paid_at: str, amount: int, channel: str) -> dict[str, Any]:
    return {
        "payment_id": payment,
        "customer_id": customer,
        "paid_at": paid_at,
        "amount_vnd": amount,
        "channel": channel,
    }


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Two regions, January 2024 and January-February 2025; a customer who moved; a re-issued export."""
    settings = Settings(home=tmp_path_factory.mktemp("lake"))
    customer = {"customer_class": "RESIDENTIAL"}
    write_raw(settings, "customers", "snapshot=2024-01-01", [
        {**customer, "customer_id": "C1", "region_code": "R1"},
        {**customer, "customer_id": "C2", "region_code": "R2"},
        {**customer, "customer_id": "C3", "region_code": "R2"},
    ])  # fmt: skip
    write_raw(settings, "customers", "snapshot=2025-01-01", [
        {**customer, "customer_id": "C2", "region_code": "R1"},  # moved: all of C2 counts in R1
        {**customer, "customer_id": "C3", "region_code": "R2"},
    ])  # fmt: skip
    write_raw(settings, "network", "snapshot=2024-01-01", [
        {"node_id": "BND1", "node_type": "BOUNDARY", "region_code": "R1"},
        {"node_id": "FD1", "node_type": "FEEDER", "parent_id": "BND1", "region_code": "R1"},
        {"node_id": "FD2", "node_type": "FEEDER", "parent_id": "BND1", "region_code": "R2"},
    ])  # fmt: skip
    write_raw(settings, "meters", "snapshot=2024-01-01", [
        {"meter_id": "MB1", "role": "BOUNDARY", "node_id": "BND1"},
        {"meter_id": "MF1", "role": "FEEDER", "node_id": "FD1"},
        {"meter_id": "MF2", "role": "FEEDER", "node_id": "FD2"},
        {"meter_id": "MD1", "role": "DT", "node_id": "DT1"},
    ])  # fmt: skip
    plan = [("KWH_SOLD", 2000), ("AVG_PRICE", 2000), ("LOSS_RATE", 5)]
    write_raw(settings, "plans", "snapshot=2025-01-01", [
        {"year": 2025, "region_code": "ALL", "kpi": k, "target": t} for k, t in plan
    ])  # fmt: skip
    write_raw(settings, "plans", "snapshot=2025-03-01", [
        {"year": 2025, "region_code": "ALL", "kpi": "KWH_SOLD", "target": 2100},  # the newest plan counts
    ])  # fmt: skip
    write_raw(settings, "bill_lines", "period=2024-01", [
        bill("E24", 1, "2024-01", "B1", 1, "C1", 100, 200_000),
        bill("E24", 1, "2024-01", "B3", 1, "C3", 50, 100_000),
    ])  # fmt: skip
    write_raw(settings, "bill_lines", "period=2025-01", [
        bill("E25", 1, "2025-01", "B1", 1, "C1", 100, 210_000),
        bill("E25", 1, "2025-01", "B2", 1, "C2", 40, 80_000),
        bill("E25", 1, "2025-01", "B3", 1, "C3", 60, 120_000),
    ])  # fmt: skip
    write_raw(settings, "bill_lines", "period=2025-01", [
        bill("E25", 2, "2025-01", "B1", 1, "C1", 110, 231_000),
        bill("E25", 2, "2025-01", "B1", 2, "C1", -10, -21_000, "ADJUSTMENT"),
        bill("E25", 2, "2025-01", "B2", 1, "C2", 40, 80_000),
        bill("E25", 2, "2025-01", "B3", 1, "C3", 60, 120_000),
    ])  # fmt: skip
    write_raw(settings, "bill_lines", "period=2025-01", [
        bill("E25", 2, "2025-01", "B3", 1, "C3", 70, 140_000),  # a later delivery of the same key wins
    ])  # fmt: skip
    write_raw(
        settings, "bill_lines", "period=2025-02", [bill("E25F", 1, "2025-02", "B4", 1, "C1", 50, 100_000)]
    )
    # March of both years: 2024 has no February; its January and March are the same months' sales
    write_raw(
        settings, "bill_lines", "period=2024-03", [bill("E24M", 1, "2024-03", "B5", 1, "C1", 80, 160_000)]
    )
    write_raw(
        settings, "bill_lines", "period=2025-03", [bill("E25M", 1, "2025-03", "B6", 1, "C1", 90, 180_000)]
    )
    write_raw(settings, "payments", "period=2025-01", [
        pay("P1", "C1", "2025-01-20 10:00:00", 100, "BANK_TRANSFER"),
        pay("P2", "C1", "2025-01-21 10:00:00", 50, "CASH_COUNTER"),
        pay("P3", "C2", "2025-01-22 10:00:00", 80, "E_WALLET"),
        pay("P4", "C3", "2025-01-23 10:00:00", 70, "CARD"),
    ])  # fmt: skip
    write_raw(
        settings, "payments", "period=2025-01", [pay("P4", "C3", "2025-01-23 10:00:00", 75, "CASH_COLLECTOR")]
    )
    write_monthly(settings, "2024-01", {"MB1": 160, "MF1": 104, "MF2": 52, "MD1": 999})
    write_monthly(settings, "2025-01", {"MB1": 220, "MF1": 150, "MF2": 72})
    return settings


def _row(kpi: Any, period: str, region: str) -> dict[str, Any]:
    rows = kpi[(kpi["period"] == period) & (kpi["region_code"] == region)].to_dict("records")
    assert len(rows) == 1
    return rows[0]


def _check(row: dict[str, Any], expected: dict[str, float | None]) -> None:
    for column, value in expected.items():
        if value is None:
            assert math.isnan(row[column]), column
        else:
            assert row[column] == pytest.approx(value, rel=1e-12), column


def test_pandas_kpis_on_a_tiny_lake(tiny_lake: Settings) -> None:
    kpi = pandas_kpi.compute(tiny_lake)
    assert list(kpi.columns) == ["period", "region_code", *pandas_kpi.KPI_COLUMNS]
    assert list(zip(kpi["period"], kpi["region_code"], strict=True)) == [
        ("2024-01", "ALL"),
        ("2024-01", "R1"),
        ("2024-01", "R2"),
        ("2024-03", "ALL"),
        ("2024-03", "R1"),
        ("2025-01", "ALL"),
        ("2025-01", "R1"),
        ("2025-01", "R2"),
        ("2025-02", "ALL"),
        ("2025-02", "R1"),
        ("2025-03", "ALL"),
        ("2025-03", "R1"),
    ]
    _check(_row(kpi, "2024-01", "ALL"), {
        "kwh_sold": 150, "revenue_vnd": 300_000, "avg_price_vnd_per_kwh": 2000, "kwh_received": 160,
        "loss_rate_pct": 6.25, "kwh_sold_ytd_yoy_pct": None, "plan_kwh_sold": None,
        "cashless_customer_pct": None,
    })  # fmt: skip
    _check(_row(kpi, "2025-01", "ALL"), {
        "kwh_sold": 210, "revenue_vnd": 430_000, "kwh_sold_ytd": 210, "kwh_sold_ytd_yoy_pct": 40.0,
        "plan_kwh_sold": 2100, "plan_attainment_pct": 10.0, "avg_price_ytd_vnd_per_kwh": 430_000 / 210,
        "avg_price_ytd_vs_plan_vnd": 430_000 / 210 - 2000, "avg_price_ytd_yoy_vnd": 430_000 / 210 - 2000,
        "kwh_received": 220, "loss_rate_ytd_pct": 1000 / 220, "loss_rate_ytd_vs_plan_pts": 1000 / 220 - 5,
        "loss_rate_ytd_yoy_pts": 1000 / 220 - 6.25, "cashless_customer_pct": 100 / 3,
        "cashless_amount_pct": 180 * 100 / 305,
    })  # fmt: skip
    _check(_row(kpi, "2025-01", "R1"), {
        "kwh_sold": 140, "revenue_vnd": 290_000, "kwh_received": 150, "loss_rate_pct": 10 * 100 / 150,
        "kwh_sold_ytd_yoy_pct": 40.0, "plan_kwh_sold": None, "cashless_customer_pct": 50.0,
        "cashless_amount_pct": 180 * 100 / 230,
    })  # fmt: skip
    _check(_row(kpi, "2025-01", "R2"), {
        "kwh_sold": 70, "kwh_received": 72, "kwh_sold_ytd_yoy_pct": 40.0,
        "loss_rate_ytd_yoy_pts": 200 / 72 - 200 / 52,
        "cashless_customer_pct": 0.0, "cashless_amount_pct": 0.0,
    })  # fmt: skip
    _check(_row(kpi, "2025-02", "ALL"), {
        "kwh_sold": 50, "kwh_sold_ytd": 260, "kwh_sold_ytd_yoy_pct": (260 / 150 - 1) * 100,
        "avg_price_ytd_yoy_vnd": 530_000 / 260 - 2000,
        "plan_attainment_pct": 260 * 100 / 2100, "kwh_received": None, "loss_rate_pct": None,
        "loss_rate_ytd_pct": (220 - 260) * 100 / 220, "cashless_customer_pct": None,
    })  # fmt: skip
    _check(_row(kpi, "2025-03", "ALL"), {
        "kwh_sold": 90, "kwh_sold_ytd": 350, "kwh_sold_ytd_yoy_pct": (350 / 230 - 1) * 100,
        "avg_price_ytd_yoy_vnd": 710_000 / 350 - 460_000 / 230,
        "loss_rate_ytd_yoy_pts": (220 - 350) * 100 / 220 - (160 - 230) * 100 / 160,
        "loss_rate_ytd_pct": (220 - 350) * 100 / 220,
    })  # fmt: skip


def test_compare_finds_changed_values_and_missing_rows(tiny_lake: Settings) -> None:
    ours = pandas_kpi.compute(tiny_lake)
    assert pandas_kpi.compare(ours, ours.copy())["equal"] is True
    changed = ours.copy()
    changed.loc[0, "kwh_sold"] = 150 * (1 + 2e-6)
    changed.loc[1, "revenue_vnd"] = changed.loc[1, "revenue_vnd"] * (1 + 1e-9)  # within 1e-6: equal
    result = pandas_kpi.compare(ours, changed.iloc[:-1])
    assert result["equal"] is False
    assert result["only_pandas"] == [["2025-03", "R1"]]
    assert result["mismatch_count"] == 1
    assert result["mismatches"][0]["column"] == "kwh_sold"
    assert (result["mismatches"][0]["period"], result["mismatches"][0]["region_code"]) == ("2024-01", "ALL")


def test_pandas_kpis_equal_the_mart_built_from_the_same_lake(tiny_lake: Settings) -> None:
    from etl.marts import aggregates as marts
    from etl.marts import publish

    marts.build(tiny_lake, "bench-smoke", full=True)
    built = publish.build_file(tiny_lake, "bench-smoke")
    try:
        result = pandas_kpi.compare(pandas_kpi.compute(tiny_lake), pandas_kpi.read_mart(built))
    finally:
        built.unlink()
    assert result["columns_missing_in_marts"] == []
    assert result["rows_marts"] == 12
    assert (result["mismatches"], result["only_pandas"], result["only_marts"]) == ([], [], [])
    assert result["equal"] is True


def test_the_benchmarks_page_has_a_figures_block_to_fill() -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    filled = replace_marked(page.read_text(encoding="utf-8"), "| figures |\n")
    assert f"{MARK_START}\n| figures |\n{MARK_END}" in filled
    assert "_Figures pending" not in filled


def test_chart_draws_stage_times_against_size(tmp_path: Path) -> None:
    from bench.results import chart

    results = {
        label: {"customers": customers, "stages": {"ingest": {"seconds": seconds}}, "close": {}}
        for label, customers, seconds in (("0.1", 48_000, 10.0), ("1.0", 480_000, 95.0))
    }
    path = chart(results, tmp_path / "chart.png")
    assert path == tmp_path / "chart.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart({}, tmp_path / "none.png") is None


def test_publish_docs_fills_the_page_and_copies_the_chart(tmp_path: Path) -> None:
    from bench.run import publish_docs

    (tmp_path / "benchmarks.md").write_text(f"# B\n{MARK_START}\npending\n{MARK_END}\n", encoding="utf-8")
    png = tmp_path / "cost.png"
    png.write_bytes(b"\x89PNG")
    publish_docs("| figures |\n", png, docs=tmp_path)
    assert (tmp_path / "benchmarks.md").read_text(
        encoding="utf-8"
    ) == f"# B\n{MARK_START}\n| figures |\n{MARK_END}\n"
    assert (tmp_path / "benchmarks_cost_vs_size.png").read_bytes() == b"\x89PNG"


def test_floors_read_every_byte_and_row(tmp_path: Path) -> None:
    from bench.floors import stage_floor
    from bench.run import floor_medians
    from etl.settings import Settings

    settings = Settings(home=tmp_path / "home")
    big = tmp_path / "a.csv"
    big.write_text("meter_id,kwh\n" + "".join(f"M{i},{i}.5\n" for i in range(700_000)))
    small = tmp_path / "b.csv"
    small.write_text("meter_id,kwh\nM1,2.25\n")
    assert big.stat().st_size > 8 * 1024 * 1024  # more than one block
    found = stage_floor(settings, [big, small], "csv")
    assert found["disk"]["bytes"] == big.stat().st_size + small.stat().st_size
    assert found["scan"]["rows"] == 700_001
    parquet = tmp_path / "a.parquet"
    duckdb.sql(f"copy (from read_csv('{big}')) to '{parquet}'")
    found_parquet = stage_floor(settings, [parquet], "parquet")
    assert found_parquet["scan"]["rows"] == 700_000 and found_parquet["scan"]["columns"] == 1
    assert found_parquet["disk"]["bytes"] == parquet.stat().st_size
    medians = floor_medians([{"ingest": found}, {"ingest": {**found, "seconds": found["seconds"] + 2}}])
    assert medians["ingest"]["seconds"] == pytest.approx(found["seconds"] + 1)
    assert medians["ingest"]["rows"] == 700_001
