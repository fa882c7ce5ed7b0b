"""The checks' queries in sql/checks/ on hand-written rows in an in-memory DuckDB, with exact outputs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import duckdb
import pytest

from etl.quality.prepare import CHECKS_SQL_DIR, build_check_table
from tests.lakefixtures import memory_connection

D = Decimal


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = memory_connection()
    yield con
    con.close()


def make_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str], rows: list[tuple]) -> None:
    con.execute(f"create table {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
    if rows:
        con.executemany(f"insert into {name} values ({', '.join('?' for _ in columns)})", rows)


def built(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple]:
    build_check_table(con, name)
    return con.execute(f"select * from {name} order by all").fetchall()


def test_every_check_query_is_tested_here() -> None:
    tested = {"raw_file_accounting", "interval_energy_monthly", "tariff_bounds", "billing_reconciliation"}
    assert {p.stem for p in CHECKS_SQL_DIR.glob("*.sql")} == tested


def test_raw_file_accounting_puts_the_lakes_rows_beside_the_manifests(con: duckdb.DuckDBPyConnection) -> None:
    make_table(con, "manifest_in_scope", {
        "source_file": "VARCHAR", "dataset": "VARCHAR", "status": "VARCHAR", "ingest_seq": "BIGINT",
        "file_hash": "VARCHAR", "rows_in": "BIGINT", "rows_accepted": "BIGINT", "rows_quarantined": "BIGINT",
    }, [
        ("readings/r1.csv", "interval_reads", "INGESTED", 1, "aa", 7, 5, 1),
        ("reference/m2.csv", "meters", "REJECTED", 2, "bb", None, None, None),
        ("readings/r3.csv", "interval_reads", "INGESTED", 3, "cc", 4, 4, 0),
    ])  # fmt: skip
    make_table(
        con,
        "manifest_stems",
        {"ingest_seq": "BIGINT", "file_hash": "VARCHAR", "stem": "VARCHAR"},
        [(1, "aa", "1_aa"), (2, "bb", "2_bb"), (3, "cc", "3_cc")],
    )
    # r1: raw rows in two partitions and a quarantine file; r3: a file of another stem's hash is not its own.
    make_table(
        con,
        "lake_files",
        {"stem": "VARCHAR", "is_quarantine": "BOOLEAN", "num_rows": "BIGINT"},
        [("1_aa", False, 3), ("1_aa", False, 2), ("1_aa", True, 1), ("3_aa", False, 9)],
    )

    assert built(con, "raw_file_accounting") == [
        ("readings/r1.csv", "interval_reads", "INGESTED", 1, 7, 5, 1, 5, 1),
        ("readings/r3.csv", "interval_reads", "INGESTED", 3, 4, 4, 0, 0, 0),
        ("reference/m2.csv", "meters", "REJECTED", 2, 0, 0, 0, 0, 0),
    ]


def test_interval_energy_monthly_sums_each_meters_month(con: duckdb.DuckDBPyConnection) -> None:
    make_table(
        con,
        "validated_interval_reads",
        {"meter_id": "VARCHAR", "channel": "VARCHAR", "period": "VARCHAR", "energy_kwh": "DECIMAL(38,12)"},
        [
            ("M1", "ACTIVE_IMPORT", "2025-09", D("1.5")),
            ("M1", "ACTIVE_IMPORT", "2025-09", D("2.5")),
            ("M1", "ACTIVE_IMPORT", "2025-09", None),  # MISSING: no value
            ("M1", "ACTIVE_EXPORT", "2025-09", D("0.5")),  # another channel, summed apart
            ("M1", "ACTIVE_IMPORT", "2025-10", D("1")),
            ("M2", "ACTIVE_IMPORT", "2025-09", None),
        ],
    )

    assert built(con, "interval_energy_monthly") == [
        ("M1", "ACTIVE_EXPORT", "2025-09", D("0.5")),
        ("M1", "ACTIVE_IMPORT", "2025-09", D("4")),
        ("M1", "ACTIVE_IMPORT", "2025-10", D("1")),
        ("M2", "ACTIVE_IMPORT", "2025-09", None),
    ]


def test_tariff_bounds_take_the_newest_snapshot_in_force_in_the_period_or_the_month_before(
    con: duckdb.DuckDBPyConnection,
) -> None:
    make_table(con, "stg_lake__tariffs", {
        "tariff_code": "VARCHAR", "component": "VARCHAR", "price_vnd_per_kwh": "DECIMAL(18,6)",
        "valid_from": "DATE", "valid_to": "DATE", "snapshot_date": "DATE",
    }, [
        ("RES", "BLOCK_1", D(1984), date(2025, 5, 10), None, date(2025, 6, 1)),
        ("RES", "BLOCK_6", D(3460), date(2025, 5, 10), None, date(2025, 6, 1)),
        ("OLD", "BLOCK_1", D(1500), date(2024, 1, 1), date(2025, 2, 10), date(2025, 6, 1)),
        ("RES", "BLOCK_1", D(999), date(2024, 1, 1), None, date(2025, 1, 1)),  # an older snapshot
    ])  # fmt: skip
    make_table(
        con,
        "mart_kpi_monthly",
        {"period": "VARCHAR", "region_code": "VARCHAR"},
        [("2025-09", "ALL"), ("2025-09", "DH"), ("2025-03", "ALL"), ("2023-01", "ALL")],
    )

    assert built(con, "tariff_bounds") == [
        ("2023-01", None, None),  # no tariff in force
        ("2025-03", D(1500), D(1500)),  # OLD ends 2025-02-10, within the month before
        ("2025-09", D(1984), D(3460)),
    ]


def test_billing_reconciliation_counts_reading_periods_outside_the_tolerance(
    con: duckdb.DuckDBPyConnection,
) -> None:
    sep = (date(2025, 8, 11), date(2025, 9, 10))
    aug = (date(2025, 7, 11), date(2025, 8, 10))
    make_table(con, "int_bill_lines__current", {
        "customer_id": "VARCHAR", "period": "VARCHAR", "period_start": "DATE", "period_end": "DATE",
        "bill_type": "VARCHAR", "kwh": "DECIMAL(18,6)",
    }, [
        ("C1", "2025-09", *sep, "REGULAR", D(50)),
        ("C1", "2025-09", *sep, "REGULAR", D(70)),
        ("C2", "2025-09", *sep, "REGULAR", D(100)),
        ("C2", "2025-09", *sep, "ADJUSTMENT", D(-10)),  # not a reading period's consumption
        ("C3", "2025-09", *sep, "REGULAR", D(100)),
        ("C3", "2025-08", *aug, "REGULAR", D(200)),  # no reads with a midpoint in July-August
        ("C4", "2025-09", *sep, "REGULAR", D(1000)),
    ])  # fmt: skip
    reads = (datetime(2025, 8, 10, 9), datetime(2025, 9, 10, 9))  # midpoint 2025-08-25 21:00
    make_table(con, "validated_register_consumption", {
        "customer_id": "VARCHAR", "register": "VARCHAR", "read_from": "TIMESTAMP", "read_to": "TIMESTAMP",
        "consumption_kwh": "DECIMAL(38,12)",
    }, [
        ("C1", "TOTAL", *reads, D(120)),
        ("C1", "T1", *reads, D(60)),  # only the TOTAL register is compared
        ("C2", "TOTAL", *reads, D(97)),  # 3 kWh apart: more than 2 kWh and more than 2 %
        ("C3", "TOTAL", *reads, D("98.5")),  # 1.5 kWh apart: within 2 kWh
        ("C4", "TOTAL", *reads, D(985)),  # 15 kWh apart: within 2 %
    ])  # fmt: skip

    assert built(con, "billing_reconciliation") == [
        ("C1", 1, 0, D(0)),
        ("C2", 1, 1, D(3)),
        ("C3", 2, 1, D(200)),
        ("C4", 1, 0, D(15)),
    ]
