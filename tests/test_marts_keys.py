"""The marts' key index and their reads: a month close reads its own raw partitions, not the history."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.lake import raw_dir
from etl.marts import aggregates as marts
from etl.marts.aggregates import build, key_index, key_index_dir, read_watermark
from etl.settings import Settings
from tests import test_publish
from tests.test_publish import Lake, bill_line, cashless_partition, payment, sales_partition

# the data home and small lake of tests/test_publish.py
settings = test_publish.settings
lake = test_publish.lake

D = Decimal


def index_rows(settings: Settings, dataset: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(f"select distinct * from {key_index(settings, dataset)} order by all").fetchall()
    finally:
        con.close()


def spoil(files: list[Path]) -> None:
    """Make raw files unreadable: a build that opens one fails."""
    assert files
    for path in files:
        path.write_bytes(b"not parquet")


def test_the_index_holds_each_key_and_its_periods(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    assert index_rows(settings, "bill_lines") == [
        ("CIS-2025-01-R1", "2025-01"),
        ("CIS-2025-02-R1", "2025-02"),
    ]
    assert [period for _key, period in index_rows(settings, "payments")] == ["2025-02", "2025-02"]


def test_the_index_grows_from_new_files_as_a_rebuild_from_raw_would(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    lake.drop(
        "bill_lines", [bill_line("2025-03", "C1", "5", "10000", export="CIS-2025-01-R1", export_version=2)]
    )
    lake.drop("payments", [payment("P1", "C1", "2025-03-01 08:00:00", "216000", "CARD")])
    build(settings, "run-2")
    incremental = {d: index_rows(settings, d) for d in marts.PERIODIC_DATASETS}
    assert ("CIS-2025-01-R1", "2025-03") in incremental["bill_lines"]
    assert len(incremental["payments"]) == 3  # P1 in February and March, P2
    shutil.rmtree(settings.lake / "aggregates" / "_keys")
    build(settings, "run-3", full=True)
    assert {d: index_rows(settings, d) for d in marts.PERIODIC_DATASETS} == incremental


def test_a_close_reads_no_raw_partition_of_untouched_periods(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    # January holds neither an export nor a payment of March: its raw files must stay unopened
    spoil(sorted((raw_dir(settings, "bill_lines") / "period=2025-01").glob("*.parquet")))
    lake.drop("bill_lines", [bill_line("2025-03", "C1", "30", "60000")])
    lake.drop("payments", [payment("P9", "C2", "2025-03-03 08:00:00", "1000", "CARD")])
    lake.meter_month("2025-03", {"MB": "50"})
    report = build(settings, "run-2")
    assert report.periods_rebuilt == ["2025-03"]
    assert sales_partition(settings, "2025-03") == [("R1", D("30"), D("60000"))]
    assert cashless_partition(settings, "2025-03") == [("R2", 1, 1, D("1000"))]


def test_a_close_still_reads_the_partitions_sharing_its_keys(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    january = sorted((raw_dir(settings, "bill_lines") / "period=2025-01").glob("*.parquet"))
    # a new version of January's export billed in March replaces January's lines: January is read again
    lake.drop(
        "bill_lines", [bill_line("2025-03", "C1", "7", "14000", export="CIS-2025-01-R1", export_version=2)]
    )
    assert marts.affected_periods(settings, read_watermark(settings)) == {"2025-01", "2025-03"}
    spoil(january)
    with pytest.raises(duckdb.Error):
        build(settings, "run-2")


def test_a_refresh_adds_a_file_of_the_new_keys_and_leaves_the_others(settings: Settings, lake: Lake) -> None:
    build(settings, "run-1")
    before = {path: path.read_bytes() for path in key_index_dir(settings, "payments").glob("*.parquet")}
    lake.drop("payments", [payment("P7", "C1", "2025-03-01 08:00:00", "1000", "CARD")])
    build(settings, "run-2")
    after = sorted(key_index_dir(settings, "payments").glob("*.parquet"))
    assert {path: path.read_bytes() for path in after if path in before} == before
    (added,) = [path for path in after if path not in before]
    con = duckdb.connect()
    try:
        assert con.execute(f"select period from '{added}'").fetchall() == [("2025-03",)]
    finally:
        con.close()
    # bill lines had no new file: their index is as it was
    assert len(list(key_index_dir(settings, "bill_lines").glob("*.parquet"))) == 1


def test_an_index_of_many_files_is_merged_into_one(
    settings: Settings, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(marts, "KEY_INDEX_FILES", 2)
    build(settings, "run-1")
    for n, day in enumerate(("01", "02", "03"), start=2):
        lake.drop("payments", [payment(f"P{n}0", "C1", f"2025-03-{day} 08:00:00", "1000", "CARD")])
        build(settings, f"run-{n}")
    merged = {d: index_rows(settings, d) for d in marts.PERIODIC_DATASETS}
    # one file per refresh: the third, beside two, merged them all into one; the fourth added beside it
    assert len(list(key_index_dir(settings, "payments").glob("*.parquet"))) == 2
    shutil.rmtree(settings.lake / "aggregates" / "_keys")
    build(settings, "run-full", full=True)
    assert {d: index_rows(settings, d) for d in marts.PERIODIC_DATASETS} == merged
    assert len(merged["payments"]) == 5  # P1 and P2 of the lake, and the three added
