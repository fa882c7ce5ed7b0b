"""Data-quality suites on tiny hand-written lakes: each passes on clean data and catches planted faults.

GX takes seconds to import, so one module-scoped fixture imports it for every test.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.contract import DATASETS
from etl.errors import QualityError
from etl.lake import MANIFEST_COLUMNS, file_stem, manifest_dir, quarantine_dir, raw_dir, validated_dir
from etl.models import raw_columns
from etl.quality import QualityReport, check
from etl.quality.datadocs import docs_dir
from etl.quality.suites import EXPECTATIONS_DIR, load_suites
from etl.settings import Settings

RUN = "run-1"


@pytest.fixture(scope="module")
def gx() -> Any:
    from etl.quality.gx_duckdb import import_gx

    return import_gx()


def write_parquet(columns: dict[str, str], rows: list[dict[str, Any]], dest: Path) -> None:
    """Rows (absent keys are NULL) as Parquet with exactly `columns` and their types."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("create table t (" + ", ".join(f"{n} {t}" for n, t in columns.items()) + ")")
    if rows:
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"insert into t values ({marks})", [[r.get(c) for c in columns] for r in rows])
    con.execute(f"copy t to '{dest.as_posix()}' (format parquet)")
    con.close()


class Lake:
    """Writes raw Parquet, quarantine rows and manifest rows in etl/lake.py's layout."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings(home=home, threads=1, memory_limit="1GB")
        self.seq = 0

    def ingest(
        self,
        dataset: str,
        rows: list[dict[str, Any]],
        *,
        quarantined: int = 0,
        rows_in: int | None = None,
        rows_accepted: int | None = None,
        run_id: str = RUN,
        types: dict[str, str] | None = None,
    ) -> None:
        """One landing file: raw Parquet per partition, quarantine rows, then its manifest row."""
        self.seq += 1
        spec = DATASETS[dataset]
        source = f"{spec.folder}/{dataset}_{self.seq}.csv"
        sha = hashlib.sha256(source.encode()).hexdigest()
        stem = file_stem(self.seq, sha)
        lineage = {
            "_source_file": source,
            "_file_hash": sha,
            "_run_id": run_id,
            "_ingested_at": datetime(2025, 10, 1),
            "_ingest_seq": self.seq,
        }
        parts: dict[str, list[dict[str, Any]]] = {}
        for line_no, row in enumerate(rows, start=2):
            full = lineage | {"_line_no": line_no} | row
            parts.setdefault(_partition(dataset, full), []).append(full)
        columns = raw_columns(dataset) | (types or {})
        for part, part_rows in parts.items():
            write_parquet(columns, part_rows, raw_dir(self.settings, dataset) / part / f"{stem}.parquet")
        if quarantined:
            q_columns = {"dataset": "VARCHAR", "line_no": "BIGINT"}
            q_rows = [{"dataset": dataset, "line_no": 100 + i} for i in range(quarantined)]
            write_parquet(q_columns, q_rows, quarantine_dir(self.settings, dataset) / f"{stem}.parquet")
        manifest = {
            "file_hash": sha,
            "dataset": dataset,
            "source_file": source,
            "status": "INGESTED",
            "rows_in": len(rows) + quarantined if rows_in is None else rows_in,
            "rows_accepted": len(rows) if rows_accepted is None else rows_accepted,
            "rows_quarantined": quarantined,
            "partitions": sorted(parts),
            "run_id": run_id,
            "ingest_seq": self.seq,
        }
        write_parquet(MANIFEST_COLUMNS, [manifest], manifest_dir(self.settings) / f"{stem}.parquet")

    def validated(self, table: str, columns: dict[str, str], rows: list[dict[str, Any]]) -> None:
        """Write a VEE table, one data.parquet per period."""
        for period in sorted({r["period"] for r in rows}):
            dest = validated_dir(self.settings, table) / f"period={period}" / "data.parquet"
            write_parquet(columns, [r for r in rows if r["period"] == period], dest)


def _partition(dataset: str, row: dict[str, Any]) -> str:
    spec = DATASETS[dataset]
    if spec.is_reference:
        return f"snapshot={row['_snapshot_date']}"
    value = row[spec.partition_by]
    return f"period={value if isinstance(value, str) else value.strftime('%Y-%m')}"


def read_results(settings: Settings, stage: str) -> dict[tuple[str, str], dict[str, Any]]:
    """lake/quality/<run>/<stage>.parquet keyed by (suite, check_name)."""
    path = settings.lake / "quality" / RUN / f"{stage}.parquet"
    rows = duckdb.sql(f"select * from read_parquet('{path.as_posix()}')").fetchall()
    names = [d[0] for d in duckdb.sql(f"describe select * from read_parquet('{path.as_posix()}')").fetchall()]
    return {(r["suite"], r["check_name"]): r for r in (dict(zip(names, row, strict=True)) for row in rows)}


def failed(results: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], tuple[str, int | None]]:
    """The failed checks: (suite, check) -> (severity, rows failed). Not-checked rows (passed NULL) are not
    failures."""
    return {key: (r["severity"], r["rows_failed"]) for key, r in results.items() if r["passed"] is False}


def interval(
    meter: str, start: str, kwh: str, quality: str | None = "A", minutes: int = 30
) -> dict[str, Any]:
    return {
        "meter_id": meter,
        "interval_start": datetime.fromisoformat(start),
        "interval_minutes": minutes,
        "kwh": Decimal(kwh),
        "quality": quality,
        "channel": "ACTIVE_IMPORT",
        "interval_start_utc": datetime.fromisoformat(start) - timedelta(hours=7),
    }


def meter(meter_id: str, installed_on: date, removed_on: date | None = None) -> dict[str, Any]:
    return {
        "meter_id": meter_id,
        "role": "DT",
        "node_id": f"N-{meter_id}",
        "reading_mode": "INTERVAL",
        "multiplier": Decimal(40),
        "register_digits": 6,
        "installed_on": installed_on,
        "removed_on": removed_on,
        "_snapshot_date": date(2025, 9, 1),
    }


# ----------------------------------------------------------------------------------------------- suites


def test_raw_suites_follow_the_contract() -> None:
    """Every required column is checked not-null, every enum in-set, every column typed, every key."""
    suites = {s.name: s for s in load_suites("raw")}
    assert set(suites) == {f"raw.{d}" for d in DATASETS} | {"raw.manifest"}
    for name, spec in DATASETS.items():
        expectations = suites[f"raw.{name}"].expectations
        types = next(e for e in expectations if e.type == "expect_columns_to_have_types")
        assert types.kwargs["types"] == raw_columns(name)
        # a rule checked column by column, or for several columns in one check
        not_null: list[str] = []
        in_set: dict[str, list[Any]] = {}
        for e in expectations:
            if e.type == "expect_column_values_to_not_be_null":
                not_null.append(e.kwargs["column"])
            elif e.type == "expect_columns_values_to_not_be_null":
                not_null += e.kwargs["columns"]
            elif e.type == "expect_column_values_to_be_in_set":
                in_set[e.kwargs["column"]] = e.kwargs["value_set"]
            elif e.type == "expect_columns_values_to_be_in_set":
                in_set |= e.kwargs["value_sets"]
            if "not_be_null" in e.type or "in_set" in e.type:
                assert e.severity == "critical", (name, e.check_name)
        assert len(not_null) == len(set(not_null)), name
        contract = {c.name for c in spec.columns}
        assert {c for c in not_null if c in contract} == {c.name for c in spec.columns if c.required}, name
        enums = {c.name: list(c.enum) for c in spec.columns if c.enum}
        assert {c: v for c, v in in_set.items() if c in enums} == enums, name
        keys = [
            e for e in suites[f"raw.{name}"].expectations if e.type == "expect_compound_columns_to_be_unique"
        ]
        # interval_reads: the instant, so a fall-back night's repeated local hour is not a repeated key
        key = [{"interval_start": "interval_start_utc"}.get(c, c) for c in spec.key]
        assert [(k.kwargs["column_list"], k.severity) for k in keys] == [([*key, "_ingest_seq"], "warning")]


def test_every_suite_file_loads_with_known_severities() -> None:
    files = sorted(EXPECTATIONS_DIR.glob("*/*.json"))
    suites = [s for stage in ("raw", "validated", "marts") for s in load_suites(stage)]
    assert len(suites) == len(files) == 25  # with regions, mart_meter_monthly, the loss marts
    assert {e.severity for s in suites for e in s.expectations} == {"critical", "warning"}


def test_summary_lines_show_each_suite_and_each_failure() -> None:
    row = {"run_id": RUN, "stage": "raw", "checked_at": None, "description": "d"}
    report = QualityReport(
        RUN,
        "raw",
        [
            row | {"suite": "raw.a", "check_name": "c1", "severity": "critical", "rows_checked": 10,
                   "rows_failed": 2, "passed": False},
            row | {"suite": "raw.a", "check_name": "c2", "severity": "warning", "rows_checked": 10,
                   "rows_failed": 0, "passed": True},
            row | {"suite": "raw.b", "check_name": "c3", "severity": "warning", "rows_checked": 0,
                   "rows_failed": None, "passed": False},
        ],
    )  # fmt: skip
    assert report.summary_lines() == [
        "raw.a: 1/2 checks passed, 0 warning(s), 1 critical",
        "  CRITICAL c1: 2 of 10 rows failed (d)",
        "raw.b: 0/1 checks passed, 1 warning(s), 0 critical",
        "  WARNING c3: d",
    ]
    assert [r["check_name"] for r in report.critical_failures] == ["c1"]


# -------------------------------------------------------------------------------------------------- raw


def test_raw_passes_on_clean_files_and_checks_only_this_runs_files(tmp_path: Path, gx: Any) -> None:
    lake = Lake(tmp_path)
    reads = [interval("M1", "2025-09-01 00:00", "1.5"), interval("M1", "2025-09-01 00:30", "2.0", None)]
    lake.ingest("interval_reads", reads, quarantined=1)
    lake.ingest("meters", [meter("M1", date(2020, 1, 1))])
    lake.ingest(
        "bill_lines", [bill_line("C1", 1, "50"), bill_line("C1", 2, "-5") | {"bill_type": "ADJUSTMENT"}]
    )
    # Faulty, but ingested (and checked) by an earlier run: out of scope when periods are given.
    lake.ingest("interval_reads", [interval("M1", "2025-09-02 00:00", "-1")], run_id="run-0")
    lake.ingest("meters", [meter("M2", date(2020, 1, 1)) | {"role": "X", "_snapshot_date": date(2025, 8, 1)}],
                run_id="run-0")  # fmt: skip

    report = check(lake.settings, RUN, "raw", periods=["2025-09"])

    results = read_results(lake.settings, "raw")
    assert failed(results) == {}
    assert report.critical_failures == []
    reads_not_null = results[("raw.interval_reads", "expect_column_values_to_not_be_null(meter_id)")]
    assert (reads_not_null["rows_checked"], reads_not_null["rows_failed"]) == (2, 0)
    types = results[("raw.meters", "expect_columns_to_have_types")]
    assert (types["rows_checked"], types["rows_failed"]) == (len(raw_columns("meters")), 0)
    conserved = results[("raw.manifest", "unexpected_rows(raw_rows_equal_accepted)")]
    assert (conserved["rows_checked"], conserved["rows_failed"]) == (3, 0)  # this run's three files
    payments = results[("raw.payments", "suite_runs")]
    assert (payments["passed"], payments["rows_checked"], payments["rows_failed"]) == (None, 0, 0)
    assert payments["description"] == "not checked: no payments delivered yet"
    # Interval reads delivered by an earlier run only: nothing of them in this run's files of 2025-10.
    check(lake.settings, RUN, "raw", periods=["2025-10"])
    reads = read_results(lake.settings, "raw")[("raw.interval_reads", "suite_runs")]
    assert (reads["passed"], reads["rows_failed"]) == (None, 0)
    assert reads["description"] == "not checked: no interval reads among the files in scope"
    assert (docs_dir(lake.settings, "raw") / "index.html").exists()


def test_raw_scoped_to_a_run_that_ingested_nothing_checks_no_file(tmp_path: Path, gx: Any) -> None:
    lake = Lake(tmp_path)
    lake.ingest("interval_reads", [interval("M1", "2025-09-01 00:00", "1.5")], run_id="run-0")

    check(lake.settings, RUN, "raw", periods=["2025-09"])  # RUN ingested no file

    results = read_results(lake.settings, "raw")
    assert failed(results) == {}
    conserved = results[("raw.manifest", "unexpected_rows(raw_rows_equal_accepted)")]
    assert (conserved["rows_checked"], conserved["rows_failed"]) == (0, 0)


def test_raw_catches_planted_faults_and_raises_after_writing_results(tmp_path: Path, gx: Any) -> None:
    lake = Lake(tmp_path)
    lake.ingest(
        "interval_reads",
        [
            interval("M1", "2025-09-01 00:00", "1.5"),
            interval("M1", "2025-09-01 00:00", "1.5"),  # key repeated within the file
            interval("M1", "2025-09-01 00:30", "2.0", "X"),  # bad enum
            interval("M1", "2025-09-01 01:00", "-1.0"),  # negative energy
            interval("M1", "2025-09-01 01:30", "1.0", minutes=45),  # not 15, 30 or 60
            interval("M2", "1899-12-31 23:30", "1.0") | {"meter_id": None},  # NULL required, before 1900
        ],
        rows_in=9,  # 6 accepted + 0 quarantined != 9
    )
    lake.ingest("register_reads", [], rows_in=4, rows_accepted=4)  # the manifest claims rows the lake lacks
    lake.ingest(
        "payments",
        [{"payment_id": "P1", "bill_id": "B1", "customer_id": "C1", "paid_at": datetime(2025, 9, 3, 10),
          "amount_vnd": 100.0, "channel": "CARD"}],
        types={"amount_vnd": "DOUBLE"},  # not the lake's DECIMAL(18,6)
    )  # fmt: skip
    lake.ingest("bill_lines", [bill_line("C1", 1, "-5")])  # negative kWh on a REGULAR line

    with pytest.raises(QualityError) as raised:
        check(lake.settings, RUN, "raw", periods=["2025-09", "1899-12"])

    reads = "raw.interval_reads"
    assert failed(read_results(lake.settings, "raw")) == {
        (reads, "expect_column_values_to_not_be_null(meter_id)"): ("critical", 1),
        (reads, "expect_column_values_to_be_in_set(quality)"): ("critical", 1),
        (reads, "expect_column_values_to_be_between(kwh)"): ("critical", 1),
        (reads, "expect_column_values_to_be_in_set(interval_minutes)"): ("critical", 1),
        (reads, "expect_column_values_to_be_between(interval_start)"): ("critical", 1),
        (reads, "expect_compound_columns_to_be_unique(meter_id, channel, interval_start_utc, _ingest_seq)"): (
            "warning",
            1,
        ),
        ("raw.manifest", "unexpected_rows(rows_in_conserved)"): ("critical", 1),
        ("raw.manifest", "unexpected_rows(raw_rows_equal_accepted)"): ("critical", 1),
        ("raw.payments", "expect_columns_to_have_types"): ("critical", 1),
        ("raw.bill_lines", "unexpected_rows(negative_kwh_only_on_adjustments)"): ("critical", 1),
    }
    message = str(raised.value)
    assert "raw.interval_reads: expect_column_values_to_not_be_null(meter_id): 1 of 6 rows failed" in message
    assert "raw.manifest: unexpected_rows(raw_rows_equal_accepted): 1 of 4 rows failed" in message
    assert "expect_compound_columns_to_be_unique" not in message  # a warning does not stop the run
    assert (docs_dir(lake.settings, "raw") / "index.html").exists()


# -------------------------------------------------------------------------------------------- validated

INTERVALS = {
    "meter_id": "VARCHAR", "channel": "VARCHAR", "interval_start": "TIMESTAMP",
    "interval_start_utc": "TIMESTAMP", "period": "VARCHAR", "interval_minutes": "BIGINT",
    "recorded_kwh": "DECIMAL(18,6)", "multiplier": "DECIMAL(18,6)", "energy_kwh": "DECIMAL(38,12)",
    "quality": "VARCHAR", "rule": "VARCHAR", "_source_file": "VARCHAR", "_line_no": "BIGINT",
}  # fmt: skip
MONTHLY = {
    "period": "VARCHAR", "meter_id": "VARCHAR", "channel": "VARCHAR", "expected_intervals": "BIGINT",
    "actual_intervals": "BIGINT", "upstream_estimated_intervals": "BIGINT", "edited_intervals": "BIGINT",
    "estimated_intervals": "BIGINT", "missing_intervals": "BIGINT", "recorded_kwh": "DECIMAL(38,6)",
    "energy_kwh": "DECIMAL(38,12)", "estimated_energy_kwh": "DECIMAL(38,12)",
}  # fmt: skip
CONSUMPTION = {
    "meter_id": "VARCHAR", "customer_id": "VARCHAR", "register": "VARCHAR", "read_from": "TIMESTAMP",
    "read_to": "TIMESTAMP", "period": "VARCHAR", "consumption_kwh": "DECIMAL(38,12)", "rule": "VARCHAR",
}  # fmt: skip


def validated_interval(start: str, recorded: str | None, quality: str, rule: str) -> dict[str, Any]:
    value = None if recorded is None else Decimal(recorded)
    return {
        "meter_id": "M1", "channel": "ACTIVE_IMPORT", "interval_start": datetime.fromisoformat(start),
        "interval_start_utc": datetime.fromisoformat(start) - timedelta(hours=7), "period": start[:7],
        "interval_minutes": 30, "recorded_kwh": value, "multiplier": Decimal(40),
        "energy_kwh": None if value is None else value * 40, "quality": quality, "rule": rule,
    }  # fmt: skip


def month_row(**counts: Any) -> dict[str, Any]:
    base = {
        "period": "2025-09", "meter_id": "M1", "channel": "ACTIVE_IMPORT", "expected_intervals": 20,
        "actual_intervals": 18, "upstream_estimated_intervals": 0, "edited_intervals": 0,
        "estimated_intervals": 1, "missing_intervals": 1, "recorded_kwh": Decimal("4.5"),
        "energy_kwh": Decimal(180), "estimated_energy_kwh": Decimal(60),
    }  # fmt: skip
    return base | counts


def consumption(customer: str, read_from: str, read_to: str, kwh: str) -> dict[str, Any]:
    return {
        "meter_id": f"CM-{customer}", "customer_id": customer, "register": "TOTAL",
        "read_from": datetime.fromisoformat(read_from), "read_to": datetime.fromisoformat(read_to),
        "period": read_to[:7], "consumption_kwh": Decimal(kwh), "rule": "INDEX_DIFFERENCE",
    }  # fmt: skip


def clean_validated(lake: Lake) -> None:
    lake.ingest("meters", [meter("M1", date(2025, 9, 1), removed_on=date(2025, 9, 30))])
    lake.validated(
        "interval_reads",
        INTERVALS,
        [
            validated_interval("2025-09-30 22:30", "1.5", "ACTUAL", "AS_READ"),
            validated_interval("2025-09-30 23:00", None, "MISSING", "UNFILLED_GAP"),
            validated_interval("2025-09-30 23:30", "1.5", "ESTIMATED", "LIKE_DAY"),
            validated_interval("2025-09-30 23:59", "1.5", "ACTUAL", "AS_READ"),
        ],
    )
    lake.validated("meter_monthly", MONTHLY, [month_row()])
    lake.validated(
        "register_consumption",
        CONSUMPTION,
        [consumption("C1", "2025-08-10 09:00", "2025-09-10 09:00", "120")],
    )


def test_validated_passes_on_clean_tables(tmp_path: Path, gx: Any) -> None:
    lake = Lake(tmp_path)
    clean_validated(lake)

    report = check(lake.settings, RUN, "validated", periods=["2025-09"])

    results = read_results(lake.settings, "validated")
    assert failed(results) == {}
    assert report.warnings == []
    key = results[
        (
            "validated.interval_reads",
            "expect_compound_columns_to_be_unique(meter_id, channel, interval_start_utc)",
        )
    ]
    assert (key["rows_checked"], key["rows_failed"]) == (4, 0)
    installed = results[("validated.interval_reads", "unexpected_rows(within_installed_dates)")]
    assert (installed["rows_checked"], installed["rows_failed"]) == (4, 0)


def test_validated_catches_planted_faults(tmp_path: Path, gx: Any) -> None:
    lake = Lake(tmp_path)
    clean_validated(lake)
    lake.validated(
        "interval_reads",
        INTERVALS,
        [
            validated_interval("2025-09-30 22:30", "1.5", "ACTUAL", "AS_READ"),
            validated_interval("2025-09-30 22:30", "1.5", "ACTUAL", "AS_READ"),  # duplicate key
            validated_interval("2025-09-30 23:00", "0", "MISSING", "UNFILLED_GAP"),  # a silent zero
            validated_interval("2025-09-30 23:30", "-1.5", "ESTIMATED", "LIKE_DAY"),  # negative energy
            validated_interval("2025-08-31 23:30", "1.0", "ACTUAL", "AS_READ") | {"period": "2025-09"},
            validated_interval("2025-09-30 23:59", "1.0", "ACTUAL", None),  # no rule
        ],
    )
    lake.validated("meter_monthly", MONTHLY, [month_row(estimated_intervals=3, actual_intervals=16)])

    with pytest.raises(QualityError, match="validated.interval_reads"):
        check(lake.settings, RUN, "validated", periods=["2025-09"])

    reads, monthly = "validated.interval_reads", "validated.meter_monthly"
    assert failed(read_results(lake.settings, "validated")) == {
        (reads, "expect_compound_columns_to_be_unique(meter_id, channel, interval_start_utc)"): (
            "critical",
            1,
        ),
        (reads, "expect_column_values_to_not_be_null(rule)"): ("critical", 1),
        (reads, "expect_column_values_to_be_between(recorded_kwh)"): ("critical", 1),
        (reads, "expect_column_values_to_be_between(energy_kwh)"): ("critical", 1),
        (reads, "unexpected_rows(missing_has_no_value)"): ("critical", 1),
        (reads, "unexpected_rows(period_is_local_month)"): ("critical", 1),
        (reads, "unexpected_rows(within_installed_dates)"): ("critical", 1),  # before installed_on
        (monthly, "unexpected_rows(energy_equals_intervals)"): ("critical", 1),  # 180 != 3.5 x 40
        (monthly, "unexpected_rows(estimated_share_within_10_pct)"): ("warning", 1),  # 3 of 20 estimated
    }


def test_validated_tables_not_built_are_recorded_not_passed(tmp_path: Path, gx: Any) -> None:
    lake = Lake(tmp_path)
    lake.ingest("interval_reads", [interval("M1", "2025-09-01 00:00", "1.5")])  # but VEE has not run

    check(lake.settings, RUN, "validated")

    results = read_results(lake.settings, "validated")
    assert failed(results) == {
        (f"validated.{t}", "suite_runs"): ("warning", None) for t in ("interval_reads", "meter_monthly")
    }
    assert "not built" in results[("validated.meter_monthly", "suite_runs")]["description"]
    # No register reads delivered: nothing to check, said so, and not a failure.
    absent = results[("validated.register_consumption", "suite_runs")]
    assert (absent["rows_checked"], absent["rows_failed"], absent["passed"]) == (0, 0, None)
    assert absent["description"] == "not checked: no register reads delivered yet"


# ------------------------------------------------------------------------------------------------ marts

KPI = {
    "period": "VARCHAR", "region_code": "VARCHAR",
    "kwh_sold": "DECIMAL(38,6)", "revenue_vnd": "DECIMAL(38,6)",
    "avg_price_vnd_per_kwh": "DOUBLE", "kwh_received": "DECIMAL(38,12)", "loss_rate_ytd_pct": "DOUBLE",
    "cashless_customer_pct": "DOUBLE", "cashless_amount_pct": "DOUBLE",
}  # fmt: skip
SALES = {
    "period": "VARCHAR", "region_code": "VARCHAR", "customer_class": "VARCHAR", "tariff_code": "VARCHAR",
    "kwh_sold": "DECIMAL(38,6)", "revenue_vnd": "DECIMAL(38,6)", "avg_price_vnd_per_kwh": "DOUBLE",
    "customers_billed": "BIGINT",
}  # fmt: skip
BALANCE = {
    "period": "VARCHAR", "node_id": "VARCHAR", "node_type": "VARCHAR", "region_code": "VARCHAR",
    "kwh_in": "DECIMAL(38,12)", "kwh_billed": "DECIMAL(38,6)", "loss_kwh": "DECIMAL(38,12)",
    "loss_rate_pct": "DOUBLE", "estimated_share_pct": "DOUBLE",
}  # fmt: skip


SALES_KEY = "period, region_code, customer_class, tariff_code"
RECONCILED = "expect_column_values_to_be_between(periods_outside)"


def kpi(region: str, kwh: str, revenue: str, **extra: Any) -> dict[str, Any]:
    return {
        "period": "2025-09", "region_code": region, "kwh_sold": Decimal(kwh), "revenue_vnd": Decimal(revenue),
        "avg_price_vnd_per_kwh": float(Decimal(revenue) / Decimal(kwh)), "kwh_received": Decimal(300),
        "loss_rate_ytd_pct": 3.5, "cashless_customer_pct": 100.0, "cashless_amount_pct": 99.0,
    } | extra  # fmt: skip


def sales(region: str, kwh: str, revenue: str, tariff: str = "RES") -> dict[str, Any]:
    return {
        "period": "2025-09", "region_code": region, "customer_class": "RESIDENTIAL", "tariff_code": tariff,
        "kwh_sold": Decimal(kwh), "revenue_vnd": Decimal(revenue), "customers_billed": 1,
    }  # fmt: skip


def balance(node: str, node_type: str, kwh_in: str) -> dict[str, Any]:
    return {"period": "2025-09", "node_id": node, "node_type": node_type, "region_code": "DH",
            "kwh_in": Decimal(kwh_in), "estimated_share_pct": 0.0}  # fmt: skip


METER = {
    "period": "VARCHAR", "meter_id": "VARCHAR", "channel": "VARCHAR", "role": "VARCHAR", "unit": "VARCHAR",
    "expected_intervals": "BIGINT", "actual_intervals": "BIGINT", "upstream_estimated_intervals": "BIGINT",
    "estimated_intervals": "BIGINT", "missing_intervals": "BIGINT", "recorded_qty": "DECIMAL(38,6)",
    "validated_qty": "DECIMAL(38,12)",
}  # fmt: skip


def bill_line(customer: str, line_no: int, kwh: str, version: int = 1) -> dict[str, Any]:
    return {
        "export_id": "CIS-2025-09-R1", "export_version": version, "billing_period": "2025-09",
        "bill_id": f"B-{customer}", "line_no": line_no, "customer_id": customer, "bill_type": "REGULAR",
        "period_start": date(2025, 8, 11), "period_end": date(2025, 9, 10), "tariff_code": "RES",
        "component": f"BLOCK_{line_no}", "kwh": Decimal(kwh), "unit_price_vnd": Decimal(2000),
        "amount_vnd": Decimal(kwh) * 2000, "vat_vnd": Decimal(kwh) * 160, "issued_on": date(2025, 9, 12),
    }  # fmt: skip


# The loss marts, empty in these marts files: the columns their checks read.
HOTSPOTS = {
    "period": "VARCHAR", "node_id": "VARCHAR", "hotspot_rank": "BIGINT", "is_weak_balance": "BOOLEAN",
    "estimated_share_pct": "DOUBLE", "kwh_in": "DECIMAL(38,12)", "kwh_consumed_calendar": "DECIMAL(38,6)",
    "loss_calendar_kwh": "DECIMAL(38,12)",
}  # fmt: skip
SIGNALS = ("drop_vs_history", "drop_with_dt_loss", "near_zero", "after_disconnection", "tou_mismatch",
           "billed_below_metered")  # fmt: skip
CANDIDATES = {
    "period": "VARCHAR", "customer_id": "VARCHAR", "candidate_rank": "BIGINT", "score": "DOUBLE",
    "signals": "VARCHAR", **dict.fromkeys(SIGNALS, "BOOLEAN"),
    **{f"{signal}_hit_rate_pct": "DOUBLE" for signal in SIGNALS},
}  # fmt: skip


def marts_file(path: Path, kpi_rows: list[dict], sales_rows: list[dict], balance_rows: list[dict]) -> Path:
    con = duckdb.connect(str(path))
    for name, columns, rows in (
        ("mart_kpi_monthly", KPI, kpi_rows),
        ("mart_sales_monthly", SALES, sales_rows),
        ("mart_energy_balance_monthly", BALANCE, balance_rows),
        ("mart_meter_monthly", METER, []),
        ("mart_loss_hotspots_monthly", HOTSPOTS, []),
        ("mart_inspection_candidates", CANDIDATES, []),
    ):
        con.execute(f"create table {name} (" + ", ".join(f"{n} {t}" for n, t in columns.items()) + ")")
        marks = ", ".join("?" for _ in columns)
        values = [[r.get(c) for c in columns] for r in rows]
        if values:
            con.executemany(f"insert into {name} values ({marks})", values)
    con.close()
    return path


def marts_lake(tmp_path: Path) -> Lake:
    """Tariffs, network, bills and metered consumption behind the marts of September 2025."""
    lake = Lake(tmp_path / "home")
    snapshot = date(2025, 6, 1)
    lake.ingest("tariffs", [
        {"tariff_code": "RES", "customer_class": "RESIDENTIAL", "component": f"BLOCK_{n}",
         "price_vnd_per_kwh": Decimal(price), "valid_from": date(2025, 5, 10), "_snapshot_date": snapshot}
        for n, price in ((1, 1984), (6, 3460))
    ])  # fmt: skip
    nodes = (("F1", "FEEDER", "B1"), ("T1", "DT", "F1"), ("T2", "DT", "F1"))
    where = {"region_code": "DH", "_snapshot_date": snapshot}
    lake.ingest(
        "network", [{"node_id": n, "node_type": kind, "parent_id": up} | where for n, kind, up in nodes]
    )
    # C1 is billed 50 + 70 = 120 kWh, as metered; C2 is billed 100 kWh, metered 90.
    lake.ingest("bill_lines", [bill_line("C1", 1, "50"), bill_line("C1", 2, "70"), bill_line("C2", 1, "100")])
    lake.validated("register_consumption", CONSUMPTION, [
        consumption("C1", "2025-08-10 09:00", "2025-09-10 09:00", "120"),
        consumption("C2", "2025-08-10 09:00", "2025-09-10 09:00", "90"),
    ])  # fmt: skip
    return lake


def test_marts_pass_on_consistent_marts(tmp_path: Path, gx: Any) -> None:
    lake = marts_lake(tmp_path)
    database = marts_file(
        tmp_path / "new.duckdb",
        [kpi("ALL", "300", "660000"), kpi("DH", "100", "220000"), kpi("DL", "200", "440000")],
        [sales("DH", "100", "220000"), sales("DL", "150", "330000"), sales("DL", "50", "110000", "RES2")],
        [balance("F1", "FEEDER", "310"), balance("T1", "DT", "150"), balance("T2", "DT", "160")],
    )

    report = check(lake.settings, RUN, "marts", database=database)

    results = read_results(lake.settings, "marts")
    assert {k: v for k, v in failed(results).items()} == {
        ("marts.billing_reconciliation", "expect_column_values_to_be_between(periods_outside)"): (
            "warning",
            1,
        ),
    }  # C2: billed 100 against 90 metered
    assert report.critical_failures == []
    reconciled = results[
        ("marts.billing_reconciliation", "expect_column_values_to_be_between(periods_outside)")
    ]
    assert reconciled["rows_checked"] == 2
    company = results[("marts.mart_kpi_monthly", "unexpected_rows(company_kwh_sold_equals_regions)")]
    assert (company["rows_checked"], company["rows_failed"], company["passed"]) == (3, 0, True)
    assert database.exists()  # the check reads the new file and leaves it for publishing


def test_marts_catch_planted_faults(tmp_path: Path, gx: Any) -> None:
    lake = marts_lake(tmp_path)
    database = marts_file(
        tmp_path / "new.duckdb",
        [
            kpi("ALL", "301", "2000000"),  # != sum of regions (300); 6,645 VND/kWh: above every tariff price
            kpi("DH", "100", "220000", loss_rate_ytd_pct=25.0),  # implausible loss rate
            kpi("DL", "200", "900000"),  # 4,500 VND/kWh: a region's price outside the tariffs is a warning
        ],
        [sales("DH", "100", "220000"), sales("DL", "200", "440000"), sales("DL", "0", "0")],  # key repeated
        [balance("F1", "FEEDER", "300"), balance("T1", "DT", "150"), balance("T2", "DT", "160")],
    )

    with pytest.raises(QualityError) as raised:
        check(lake.settings, RUN, "marts", database=database)

    kpis = "marts.mart_kpi_monthly"
    assert failed(read_results(lake.settings, "marts")) == {
        (kpis, "unexpected_rows(company_kwh_sold_equals_regions)"): ("critical", 1),
        (kpis, "unexpected_rows(company_revenue_equals_regions)"): ("critical", 1),
        (kpis, "unexpected_rows(kwh_sold_equals_sales_mart)"): ("critical", 1),
        (kpis, "unexpected_rows(avg_price_within_tariffs)"): ("critical", 1),
        (kpis, "unexpected_rows(region_avg_price_within_tariffs)"): ("warning", 1),
        (kpis, "expect_column_values_to_be_between(loss_rate_ytd_pct)"): ("warning", 1),
        ("marts.mart_sales_monthly", f"expect_compound_columns_to_be_unique({SALES_KEY})"): ("critical", 1),
        ("marts.mart_energy_balance_monthly", "unexpected_rows(feeder_covers_its_dts)"): ("warning", 1),
        ("marts.billing_reconciliation", RECONCILED): ("warning", 1),
    }
    assert (
        "marts.mart_kpi_monthly: unexpected_rows(company_kwh_sold_equals_regions): 1 of 3 rows failed"
        in str(raised.value)
    )


def test_a_missing_mart_is_a_critical_failure(tmp_path: Path, gx: Any) -> None:
    lake = marts_lake(tmp_path)
    database = tmp_path / "partial.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create table mart_sales_monthly as select 1 as x")
    con.close()

    with pytest.raises(QualityError, match="mart_kpi_monthly"):
        check(lake.settings, RUN, "marts", database=database)

    results = read_results(lake.settings, "marts")
    missing = results[("marts.mart_kpi_monthly", "suite_runs")]
    assert (missing["severity"], missing["passed"]) == ("critical", False)
    # A check that GX cannot compute (no such column) fails; it never passes silently.
    broken = results[("marts.mart_sales_monthly", "expect_column_values_to_not_be_null(period)")]
    assert (broken["passed"], broken["rows_failed"]) == (False, None)
    assert "[error: " in broken["description"]


def test_marts_of_a_company_without_optional_datasets_say_what_was_not_checked(
    tmp_path: Path, gx: Any
) -> None:
    """No register reads, network, tariffs or operations data delivered: their checks say so, with 0 of 0
    rows failed."""
    lake = Lake(tmp_path / "home")
    lake.ingest("bill_lines", [bill_line("C1", 1, "100")])
    database = marts_file(
        tmp_path / "new.duckdb",
        [kpi("ALL", "100", "220000"), kpi("DH", "100", "220000")],
        [sales("DH", "100", "220000")],
        [balance("F1", "FEEDER", "310"), balance("T1", "DT", "150")],
    )

    report = check(lake.settings, RUN, "marts", database=database)

    results = read_results(lake.settings, "marts")
    assert failed(results) == {}
    not_checked = {
        key: (r["rows_checked"], r["rows_failed"], r["severity"], r["description"])
        for key, r in results.items()
        if r["passed"] is None
    }
    assert not_checked == {
        ("marts.billing_reconciliation", "suite_runs"): (
            0, 0, "warning", "not checked: no register reads delivered yet"
        ),
        ("marts.mart_kpi_monthly", "unexpected_rows(avg_price_within_tariffs)"): (
            0, 0, "critical", "not checked: no tariffs delivered yet"
        ),
        ("marts.mart_kpi_monthly", "unexpected_rows(region_avg_price_within_tariffs)"): (
            0, 0, "warning", "not checked: no tariffs delivered yet"
        ),
        ("marts.mart_energy_balance_monthly", "unexpected_rows(feeder_covers_its_dts)"): (
            0, 0, "warning", "not checked: no network delivered yet"
        ),
        ("marts.mart_service_monthly", "suite_runs"): (
            0, 0, "warning", "not checked: no service requests delivered yet"
        ),
        ("marts.mart_inspections_monthly", "suite_runs"): (
            0, 0, "warning", "not checked: no inspections delivered yet"
        ),
    }  # fmt: skip
    assert report.critical_failures == report.warnings == []
    assert len(report.not_checked) == 6
    lines = report.summary_lines()
    assert "marts.billing_reconciliation: not checked: no register reads delivered yet" in lines
    kpis = [line for line in lines if line.startswith("marts.mart_kpi_monthly")]
    assert kpis == ["marts.mart_kpi_monthly: 11/11 checks passed, 0 warning(s), 0 critical, 2 not checked"]
    assert "  NOT CHECKED unexpected_rows(avg_price_within_tariffs): no tariffs delivered yet" in lines


# ------------------------------------------------------------------------------------------- operations

LINEAGE = ["_source_file", "_line_no", "_file_hash", "_run_id", "_ingested_at", "_ingest_seq"]
REQUEST_REQUIRED = ["request_id", "region_code", "request_type", "channel", "received_at", "due_at", "status",
                    "escalated"]  # fmt: skip
INSPECTION_REQUIRED = ["inspection_id", "customer_id", "region_code", "inspected_on", "result"]


def request(request_id: str, status: str = "RESOLVED", **changes: Any) -> dict[str, Any]:
    return {
        "request_id": request_id, "customer_id": "C1", "region_code": "DH", "request_type": "BILLING",
        "channel": "HOTLINE", "received_at": datetime(2025, 9, 1, 8), "due_at": datetime(2025, 9, 3, 8),
        "status": status, "closed_at": None if status == "OPEN" else datetime(2025, 9, 2, 8),
        "escalated": False,
    } | changes  # fmt: skip


def inspection(inspection_id: str, result: str = "VIOLATION", **changes: Any) -> dict[str, Any]:
    violation = result == "VIOLATION"
    return {
        "inspection_id": inspection_id, "customer_id": "C1", "region_code": "DH",
        "inspected_on": date(2025, 9, 5), "result": result, "violation_type": "BYPASS" if violation else None,
        "recovered_kwh": Decimal(100) if violation else None,
        "recovered_vnd": Decimal(150000) if violation else None,
    } | changes  # fmt: skip


def test_operations_raw_rules_each_catch_their_rows(tmp_path: Path, gx: Any) -> None:
    """Rules of several columns run as one check each; every broken row is counted once per check."""
    lake = Lake(tmp_path)
    lake.ingest(
        "service_requests",
        [
            request("R1"),
            request("R1"),  # key repeated within the file
            request("R2", region_code=None),  # a required column empty
            request("R3", channel="FAX", request_type="LETTER"),  # two columns outside their sets: one row
            request("R4", "OPEN", closed_at=datetime(2025, 9, 2, 8)),  # open, yet closed
            request("R5", closed_at=datetime(2025, 8, 31, 8)),  # closed before it was received
            request("R6", "CANCELLED", escalated=True),
        ],
    )
    lake.ingest(
        "inspections",
        [
            inspection("I1"),
            inspection("I2", "NO_VIOLATION", violation_type="BYPASS"),  # a violation type without violation
            inspection("I3", recovered_vnd=Decimal(-1)),  # negative recovered amount
            inspection("I4", "NOT_ACCESSIBLE", recovered_kwh=Decimal(5)),  # recovered without violation
            inspection("I5", "MAYBE"),  # outside the set; no violation type, no amount: no row rule broken
            inspection("I6", "NO_VIOLATION", customer_id=None),  # a required column empty
        ],
    )

    with pytest.raises(QualityError) as raised:
        check(lake.settings, RUN, "raw", periods=["2025-09"])

    requests, inspections = "raw.service_requests", "raw.inspections"
    request_not_null = f"expect_columns_values_to_not_be_null({', '.join(REQUEST_REQUIRED + LINEAGE)})"
    inspection_not_null = f"expect_columns_values_to_not_be_null({', '.join(INSPECTION_REQUIRED + LINEAGE)})"
    results = read_results(lake.settings, "raw")
    assert failed(results) == {
        (requests, request_not_null): ("critical", 1),
        (requests, "expect_columns_values_to_be_in_set(request_type, channel, status)"): ("critical", 1),
        (requests, "unexpected_rows(row_rules)"): ("critical", 2),
        (requests, "expect_compound_columns_to_be_unique(request_id, _ingest_seq)"): ("warning", 1),
        (inspections, inspection_not_null): ("critical", 1),
        (inspections, "expect_columns_values_to_be_in_set(result, violation_type)"): ("critical", 1),
        (inspections, "unexpected_rows(row_rules)"): ("critical", 3),  # I2, I3 and I4
    }
    assert results[(requests, "unexpected_rows(row_rules)")]["rows_checked"] == 7
    assert f"raw.service_requests: {request_not_null}: 1 of 7 rows failed" in str(raised.value)


SERVICE = {
    "period": "VARCHAR", "region_code": "VARCHAR", "requests_received": "BIGINT",
    "requests_resolved": "BIGINT", "resolved_on_time": "BIGINT", "on_time_pct": "DOUBLE",
    "backlog_end": "BIGINT", "overdue_end": "BIGINT", "escalated": "BIGINT",
    "requests_received_ytd": "BIGINT", "on_time_ytd_pct": "DOUBLE",
}  # fmt: skip
INSPECTIONS = {
    "period": "VARCHAR", "region_code": "VARCHAR", "inspections": "BIGINT", "violations": "BIGINT",
    "hit_rate_pct": "DOUBLE", "recovered_kwh": "DECIMAL(38,6)", "recovered_vnd": "DECIMAL(38,6)",
    "inspections_ytd": "BIGINT", "violations_ytd": "BIGINT", "recovered_vnd_ytd": "DECIMAL(38,6)",
}  # fmt: skip


def service_row(period: str, region: str, **changes: Any) -> list[Any]:
    row = {"period": period, "region_code": region, "requests_received": 10, "requests_resolved": 8,
           "resolved_on_time": 7, "on_time_pct": 87.5, "backlog_end": 5, "overdue_end": 1, "escalated": 1,
           "requests_received_ytd": 10, "on_time_ytd_pct": 87.5} | changes  # fmt: skip
    return [row[c] for c in SERVICE]


def inspections_row(period: str, region: str, **changes: Any) -> list[Any]:
    row = {"period": period, "region_code": region, "inspections": 40, "violations": 2, "hit_rate_pct": 5.0,
           "recovered_kwh": Decimal(200), "recovered_vnd": Decimal(300000), "inspections_ytd": 40,
           "violations_ytd": 2, "recovered_vnd_ytd": Decimal(300000)} | changes  # fmt: skip
    return [row[c] for c in INSPECTIONS]


def test_operations_marts_rules_each_catch_their_rows(tmp_path: Path, gx: Any) -> None:
    lake = marts_lake(tmp_path)
    lake.ingest("service_requests", [request("R1")])
    lake.ingest("inspections", [inspection("I1")])
    database = marts_file(
        tmp_path / "new.duckdb",
        [kpi("ALL", "300", "660000"), kpi("DH", "100", "220000"), kpi("DL", "200", "440000")],
        [sales("DH", "100", "220000"), sales("DL", "150", "330000"), sales("DL", "50", "110000", "RES2")],
        [balance("F1", "FEEDER", "310"), balance("T1", "DT", "150"), balance("T2", "DT", "160")],
    )
    con = duckdb.connect(str(database))
    for name, columns, rows in (
        ("mart_service_monthly", SERVICE, [
            service_row("2025-09", "ALL"),
            service_row("2025-09", "DH", backlog_end=None, escalated=-1),  # empty; negative
            service_row("2025-09", "VL", on_time_pct=100.5, on_time_ytd_pct=None),  # not a percentage
            service_row("2025-09", "QT", on_time_ytd_pct=0.0, overdue_end=0, backlog_end=0),  # bounds pass
            service_row("2025-08", "DH", resolved_on_time=9),  # no company row; more on time than resolved
        ]),
        ("mart_inspections_monthly", INSPECTIONS, [
            inspections_row("2025-09", "ALL"),
            inspections_row("2025-09", "DH", recovered_kwh=None, hit_rate_pct=-0.5),
            inspections_row("2025-09", "VL", violations=41, violations_ytd=41, hit_rate_pct=None),
        ]),
    ):  # fmt: skip
        con.execute(f"create table {name} (" + ", ".join(f"{n} {t}" for n, t in columns.items()) + ")")
        con.executemany(f"insert into {name} values ({', '.join('?' for _ in columns)})", rows)
    con.close()

    with pytest.raises(QualityError):
        check(lake.settings, RUN, "marts", database=database)

    service, inspected = "marts.mart_service_monthly", "marts.mart_inspections_monthly"
    results = read_results(lake.settings, "marts")
    operations = {key: value for key, value in failed(results).items() if key[0] in (service, inspected)}
    service_counts = ", ".join(
        ["requests_received", "requests_resolved", "resolved_on_time", "backlog_end", "overdue_end",
         "escalated", "requests_received_ytd"]
    )  # fmt: skip
    inspection_figures = ", ".join(
        ["inspections", "violations", "recovered_kwh", "recovered_vnd", "inspections_ytd", "violations_ytd",
         "recovered_vnd_ytd"]
    )  # fmt: skip
    assert operations == {
        (service, f"expect_columns_values_to_not_be_null(period, region_code, {service_counts})"): (
            "critical", 1
        ),
        (service, f"expect_columns_values_to_be_between({service_counts})"): ("critical", 1),
        (service, "expect_columns_values_to_be_between(on_time_pct, on_time_ytd_pct)"): ("critical", 1),
        (service, "unexpected_rows(company_row_every_period)"): ("critical", 1),
        (service, "unexpected_rows(counts_consistent)"): ("critical", 1),
        (inspected, f"expect_columns_values_to_not_be_null(period, region_code, {inspection_figures})"): (
            "critical", 1
        ),
        (inspected, "expect_columns_values_to_be_between(hit_rate_pct)"): ("critical", 1),
        (inspected, "unexpected_rows(violations_within_inspections)"): ("critical", 1),
    }  # fmt: skip
    assert results[(service, f"expect_columns_values_to_be_between({service_counts})")]["rows_checked"] == 5
    passed = results[(inspected, f"expect_columns_values_to_be_between({inspection_figures})")]
    assert (passed["passed"], passed["rows_failed"]) == (True, 0)
