"""The register index: a run chains register reads from the first month it rebuilds, not from the first
month of the lake, and still equals a full rebuild row for row."""

from __future__ import annotations

import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from etl.lake import raw_files, sql_list, validated_dir
from etl.settings import Settings
from etl.vee import run as vee
from tests.lakefixtures import memory_connection, write_raw_file
from tests.test_vee_incremental import settings_for, table_rows


def meter(meter_id: str, installed_on: str, removed_on: str | None = None) -> dict:
    row = {
        "meter_id": meter_id,
        "role": "CUSTOMER",
        "customer_id": f"PC03DH000000{meter_id[-1]}",
        "reading_mode": "REGISTER",
        "multiplier": "1",
        "register_digits": 5,
        "installed_on": installed_on,
    }
    return row | ({"removed_on": removed_on} if removed_on else {})


METERS = [
    meter("C1", "2025-01-01"),
    meter("C2", "2025-01-01", "2025-01-31"),
    meter("C3", "2025-02-01"),
    meter("C4", "2025-01-01"),
]


def read(meter_id: str, at: str, index: str, read_type: str = "REGULAR") -> dict:
    return {
        "meter_id": meter_id,
        "read_at": at,
        "register": "TOTAL",
        "index_value": index,
        "read_type": read_type,
    }


# one landing file per month close, in order; C1 has an upward typo in February (March is INDEX_DOWN,
# April an UNRESOLVED_DROP), a rollover in June; C2 is replaced by C3; C4 is read in January and May
# only; July brings only a read of an unknown meter; August brings a correction and a late read.
BATCHES = [
    [
        read("C1", "2025-01-10 08:00", "100"),
        read("C2", "2025-01-10 08:00", "500"),
        read("C2", "2025-01-31 23:00", "600", "METER_OUT"),
        read("C4", "2025-01-05 08:00", "10"),
        read("X9", "2025-01-07 08:00", "5"),
    ],
    [
        read("C1", "2025-02-10 08:00", "9000"),
        read("C3", "2025-02-01 00:00", "0", "METER_IN"),
        read("C3", "2025-02-20 08:00", "50"),
    ],
    [read("C1", "2025-03-10 08:00", "400"), read("C3", "2025-03-20 08:00", "120", "SPECIAL")],
    [read("C1", "2025-04-10 08:00", "500"), read("C3", "2025-04-20 08:00", "130")],
    [read("C1", "2025-05-10 08:00", "99990"), read("C4", "2025-05-05 08:00", "90")],
    [read("C1", "2025-06-10 08:00", "20"), read("C3", "2025-06-20 08:00", "200")],
    [read("X9", "2025-07-07 08:00", "6")],
    [
        read("C1", "2025-08-10 08:00", "60"),
        read("C1", "2025-06-10 08:00", "25"),
        read("C4", "2025-03-05 08:00", "50"),
    ],
]


def deliver(settings: Settings, upto: int) -> None:
    write_raw_file(settings, "meters", METERS, seq=1, snapshot_date=date(2025, 1, 1))
    for i, rows in enumerate(BATCHES[:upto]):
        write_raw_file(settings, "register_reads", rows, seq=2 + i)


def tables(settings: Settings) -> dict[str, list[tuple]]:
    return {t: table_rows(settings, t) for t in (*vee.TABLES, "register_index")}


@pytest.fixture(scope="module")
def monthly(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """VEE after each month close, with the register months each run chained."""
    tmp = tmp_path_factory.mktemp("register_index")
    settings = settings_for(tmp / "home")
    write_raw_file(settings, "meters", METERS, seq=1, snapshot_date=date(2025, 1, 1))
    chained = []
    for i, rows in enumerate(BATCHES):
        write_raw_file(settings, "register_reads", rows, seq=2 + i)
        months = vee._register_window(settings, vee.affected_periods(settings, 1 + i))[0]
        vee.run_vee(settings, f"run-{i}")
        chained.append(months)
    return {"settings": settings, "tmp": tmp, "chained": chained, "tables": tables(settings)}


def full_rebuild(tmp: Path, name: str) -> dict[str, list[tuple]]:
    settings = settings_for(tmp / name)
    deliver(settings, len(BATCHES))
    vee.run_vee(settings, "full", full=True)
    return tables(settings)


def test_each_close_chains_only_the_months_it_rebuilds(monthly: dict) -> None:
    assert monthly["chained"] == [
        ["2025-01"],
        ["2025-02"],
        ["2025-03"],
        ["2025-04"],
        ["2025-05"],
        ["2025-06"],
        ["2025-07"],
        # the late March read and the June correction: from March on
        ["2025-03", "2025-04", "2025-05", "2025-06", "2025-07", "2025-08"],
    ]


def test_monthly_closes_equal_a_full_rebuild_row_for_row(monthly: dict) -> None:
    full = full_rebuild(monthly["tmp"], "full")
    assert len(full["register_consumption"]) == 11
    assert [r[6] for r in full["register_rejects"]] == [
        "INDEX_DOWN",
        "UNRESOLVED_DROP",
        "UNKNOWN_METER",
        "UNKNOWN_METER",
    ]
    for table, rows in full.items():
        assert monthly["tables"][table] == rows, table


def test_the_chain_crosses_months_through_the_index(monthly: dict) -> None:
    pairs = {
        (r[0], r[3].strftime("%m-%d"), r[4].strftime("%m-%d"), r[9])
        for r in monthly["tables"]["register_consumption"]
    }
    assert ("C4", "01-05", "03-05", "INDEX_DIFFERENCE") in pairs
    assert ("C4", "03-05", "05-05", "INDEX_DIFFERENCE") in pairs
    assert ("C1", "05-10", "06-10", "ROLLOVER") in pairs
    assert ("C1", "06-10", "08-10", "INDEX_DIFFERENCE") in pairs
    assert not any(p[0] in ("C2", "C3") and p[1] == "01-31" for p in pairs)


def test_the_index_holds_each_month_end_state_of_the_chain(monthly: dict) -> None:
    # (meter, month) -> (last read, its index, last accepted read, its index), read off BATCHES: C1's March
    # read is INDEX_DOWN, so March ends with it as the last read and February's as the last accepted one;
    # April's read is not dropped (it is above March's) though its pair is an UNRESOLVED_DROP; June's read
    # is corrected in August. C4 is read in January, March (delivered late) and May: the months between
    # carry the read before. C3 has no row before its first read.
    index = {
        (r[0], r[2]): (r[3].strftime("%m-%d"), r[4], r[6].strftime("%m-%d"), r[7])
        for r in monthly["tables"]["register_index"]
    }
    expected_c1 = {
        "2025-01": ("01-10", 100, "01-10", 100),
        "2025-02": ("02-10", 9000, "02-10", 9000),
        "2025-03": ("03-10", 400, "02-10", 9000),
        "2025-04": ("04-10", 500, "04-10", 500),
        "2025-05": ("05-10", 99990, "05-10", 99990),
        "2025-06": ("06-10", 25, "06-10", 25),
        "2025-07": ("06-10", 25, "06-10", 25),
        "2025-08": ("08-10", 60, "08-10", 60),
    }
    expected_c4 = {
        "2025-01": ("01-05", 10, "01-05", 10),
        "2025-02": ("01-05", 10, "01-05", 10),
        "2025-03": ("03-05", 50, "03-05", 50),
        "2025-04": ("03-05", 50, "03-05", 50),
        **{f"2025-0{m}": ("05-05", 90, "05-05", 90) for m in range(5, 9)},
    }
    for meter_id, expected in (("C1", expected_c1), ("C4", expected_c4)):
        got = {period: (a, int(b), c, int(d)) for (m, period), (a, b, c, d) in index.items() if m == meter_id}
        assert got == expected, meter_id
    assert index[("C2", "2025-05")][:2] == ("01-31", 600)
    assert min(period for m, period in index if m == "C3") == "2025-02"


def test_a_lake_without_the_index_chains_from_the_first_month(monthly: dict) -> None:
    settings = settings_for(monthly["tmp"] / "no_index")
    deliver(settings, len(BATCHES) - 1)
    vee.run_vee(settings, "first")
    shutil.rmtree(validated_dir(settings, "register_index"))
    write_raw_file(settings, "register_reads", BATCHES[-1], seq=1 + len(BATCHES))
    assert vee._register_window(settings, {"2025-03"}) == (
        ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06", "2025-07", "2025-08"],
        None,
    )
    vee.run_vee(settings, "second")
    assert tables(settings) == full_rebuild(monthly["tmp"], "full_2")


def test_the_saved_meters_are_rebuilt_when_a_snapshot_arrives(monthly: dict) -> None:
    settings = settings_for(monthly["tmp"] / "snapshot")
    shutil.copytree(monthly["settings"].lake, settings.lake)
    saved = validated_dir(settings, "meters_current")
    assert json.loads((saved / "_sources.json").read_text(encoding="utf-8"))["files"] == [
        "snapshot=2025-01-01/" + p.name
        for p in (settings.lake / "raw" / "meters" / "snapshot=2025-01-01").iterdir()
    ]
    changed = [m | {"multiplier": "2"} if m["meter_id"] == "C1" else m for m in METERS]
    write_raw_file(settings, "meters", changed, seq=20, snapshot_date=date(2025, 9, 1))
    vee.run_vee(settings, "snapshot")
    assert {r[7] for r in table_rows(settings, "register_consumption") if r[0] == "C1"} == {Decimal("2")}
    assert len(json.loads((saved / "_sources.json").read_text(encoding="utf-8"))["files"]) == 2
    fresh = settings_for(monthly["tmp"] / "snapshot_full")
    shutil.copytree(settings.lake, fresh.lake, ignore=shutil.ignore_patterns("validated"))
    vee.run_vee(fresh, "full", full=True)
    assert tables(settings) == tables(fresh)


def rows_as_written(settings: Settings, table: str) -> dict[str, list[tuple]]:
    """Each month's file of `table`, its rows in the order they were written."""
    con = memory_connection()
    return {
        path.parent.name: con.execute(f"select * from read_parquet('{path.as_posix()}')").fetchall()
        for path in sorted(validated_dir(settings, table).glob("period=*/data.parquet"))
    }


REGISTER_FILES = ("register_consumption", "register_rejects", "register_index")


def test_the_chain_built_in_ranges_of_meters_writes_the_same_files(
    monthly: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two reads per range: C1, C2, C3, C4 and the unknown X9 are chained apart, each close and all at once
    monkeypatch.setattr(vee, "REGISTER_RANGE_ROWS", 2)
    settings = settings_for(monthly["tmp"] / "ranges")
    write_raw_file(settings, "meters", METERS, seq=1, snapshot_date=date(2025, 1, 1))
    for i, rows in enumerate(BATCHES):
        write_raw_file(settings, "register_reads", rows, seq=2 + i)
        vee.run_vee(settings, f"run-{i}")
    assert tables(settings) == monthly["tables"]
    full = settings_for(monthly["tmp"] / "ranges_full")
    deliver(full, len(BATCHES))
    vee.run_vee(full, "full", full=True)
    for table in REGISTER_FILES:
        assert rows_as_written(full, table) == rows_as_written(monthly["settings"], table), table


def test_a_generated_company_chained_in_ranges_of_meters_gives_the_same_files(
    generated_company: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranged = settings_for(tmp_path / "ranged")
    shutil.copytree(generated_company.lake, ranged.lake, ignore=shutil.ignore_patterns("validated"))
    raw = sql_list(raw_files(ranged, "register_reads"))
    reads = memory_connection().execute(f"select count(*) from read_parquet({raw})").fetchone()[0]
    monkeypatch.setattr(vee, "REGISTER_RANGE_ROWS", reads // 5)
    vee.run_vee(ranged, "ranged", full=True)
    written = {table: rows_as_written(ranged, table) for table in REGISTER_FILES}
    for table in REGISTER_FILES:
        assert written[table] == rows_as_written(generated_company, table), table
    assert written["register_consumption"] and written["register_index"]
