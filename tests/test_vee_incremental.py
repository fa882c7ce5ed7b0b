"""VEE over a lake: incremental runs over batches of files equal a full rebuild, row for row."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from etl.lake import validated_dir
from etl.models import plan
from etl.settings import Settings
from etl.vee import run as vee
from tests.lakefixtures import memory_connection, write_raw_file

METERS = [
    {
        "meter_id": "M1",
        "role": "DT",
        "node_id": "DT1",
        "reading_mode": "INTERVAL",
        "multiplier": "40",
        "max_kw": "10",
        "register_digits": 6,
        "installed_on": "2025-01-01",
    },
    {
        "meter_id": "C1",
        "role": "CUSTOMER",
        "customer_id": "PC03DH0000001",
        "reading_mode": "REGISTER",
        "multiplier": "1",
        "register_digits": 5,
        "installed_on": "2025-01-01",
    },
]


def hourly(first: str, last: str, skip: tuple[str, ...] = ()) -> list[dict]:
    """M1 readings every hour from `first` to `last`, kWh following the hour of the day."""
    at, end, rows = datetime.fromisoformat(first), datetime.fromisoformat(last), []
    while at <= end:
        if at.isoformat(" ", "minutes") not in skip:
            rows.append(reading(at.isoformat(" ", "minutes"), f"{1 + at.hour / 10:.6f}"))
        at += timedelta(hours=1)
    return rows


def reading(start: str, kwh: str, quality: str | None = "A") -> dict:
    return {"meter_id": "M1", "interval_start": start, "interval_minutes": 60, "kwh": kwh, "quality": quality}


def read(at: str, index: str, meter_id: str = "C1") -> dict:
    return {
        "meter_id": meter_id,
        "read_at": at,
        "register": "TOTAL",
        "index_value": index,
        "read_type": "REGULAR",
    }


SEPTEMBER_GAPS = (
    "2025-09-10 02:00",
    "2025-09-10 03:00",
    *(f"2025-09-20 {h:02d}:00" for h in range(5, 13)),
)


def batch_1(settings: Settings) -> None:
    write_raw_file(settings, "meters", METERS, seq=1, snapshot_date=date(2025, 1, 1))
    september = hourly("2025-09-01 00:00", "2025-09-30 23:00", skip=SEPTEMBER_GAPS)
    september.append(reading("2025-09-15 10:00", "12.000000"))  # a repeat of the hour, a spike: rejected
    write_raw_file(settings, "interval_reads", september, seq=2)
    registers = [read("2025-08-10 08:00", "100"), read("2025-09-10 08:00", "400")]
    # M1 has a register too: VEE compares it with its intervals (sum_check)
    registers += [read("2025-09-01 00:00", "1000", "M1"), read("2025-09-15 00:00", "1722.4", "M1")]
    write_raw_file(settings, "register_reads", registers, seq=3)


def batch_2(settings: Settings) -> None:
    # a correction of the reading that anchors the interpolation of 2025-09-10 02:00-03:00
    write_raw_file(settings, "interval_reads", [reading("2025-09-10 01:00", "4.100000")], seq=4)
    # a reading inside the long gap of 2025-09-20: two short gaps remain
    write_raw_file(settings, "interval_reads", [reading("2025-09-20 08:00", "2.000000")], seq=5)
    # October, starting a day late: the gap crosses the month boundary
    write_raw_file(settings, "interval_reads", hourly("2025-10-02 00:00", "2025-10-31 23:00"), seq=6)


def batch_3(settings: Settings) -> None:
    # a late reading that moves the meter's first reading back into August
    write_raw_file(settings, "interval_reads", [reading("2025-08-25 12:00", "1.500000")], seq=7)
    registers = [read("2025-10-10 08:00", "900"), read("2025-09-25 08:00", "650")]
    registers.append(read("2025-10-15 00:00", "3270.4", "M1"))
    write_raw_file(settings, "register_reads", registers, seq=8)
    # after six weeks without readings: November is expected, like-day for its first week only
    write_raw_file(settings, "interval_reads", hourly("2025-12-15 00:00", "2025-12-15 23:00"), seq=9)


def batch_4(settings: Settings) -> None:
    # touches December alone: the gap before it is bounded by the October index of meter_monthly
    write_raw_file(settings, "interval_reads", [reading("2025-12-15 05:00", "2.000000")], seq=10)


def settings_for(home: Path) -> Settings:
    return Settings(home=home, memory_limit="1GB", threads=1)


def table_rows(settings: Settings, table: str) -> list[tuple]:
    files = sorted(validated_dir(settings, table).glob("period=*/data.parquet"))
    if not files:
        return []
    con = memory_connection()
    names = ", ".join(f"'{f.as_posix()}'" for f in files)
    return con.execute(f"select * from read_parquet([{names}]) order by all").fetchall()


def all_tables(settings: Settings) -> dict[str, list[tuple]]:
    return {table: table_rows(settings, table) for table in vee.TABLES}


def full_rebuild_of(settings: Settings, tmp_path: Path) -> dict[str, list[tuple]]:
    copy = settings_for(tmp_path / "full")
    shutil.copytree(settings.home / "lake", copy.lake, ignore=shutil.ignore_patterns("validated"))
    vee.run_vee(copy, "full", full=True)
    return all_tables(copy)


def validated_at(settings: Settings, *starts: str) -> list[tuple]:
    con = memory_connection()
    files = sorted(validated_dir(settings, "interval_reads").glob("period=*/data.parquet"))
    names = ", ".join(f"'{f.as_posix()}'" for f in files)
    wanted = ", ".join(f"timestamp '{s}'" for s in starts)
    return con.execute(
        f"select strftime(interval_start, '%m-%d %H:%M'), recorded_kwh, quality, rule "
        f"from read_parquet([{names}]) where interval_start in ({wanted}) order by interval_start"
    ).fetchall()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three batches run incrementally, with what VEE planned and wrote after each."""
    tmp = tmp_path_factory.mktemp("vee")
    settings = settings_for(tmp / "home")
    out: dict = {"settings": settings, "tmp": tmp}
    batch_1(settings)
    out["report_1"] = vee.run_vee(settings, "run-1")
    out["after_1"] = validated_at(settings, "2025-09-10 02:00", "2025-09-20 08:00")
    batch_2(settings)
    out["affected_2"] = vee.affected_periods(settings, 3)
    out["report_2"] = vee.run_vee(settings, "run-2")
    out["after_2"] = validated_at(
        settings, "2025-09-10 02:00", "2025-09-20 08:00", "2025-10-01 00:00", "2025-10-01 23:00"
    )
    batch_3(settings)
    out["affected_3"] = vee.affected_periods(settings, 6)
    out["report_3"] = vee.run_vee(settings, "run-3")
    batch_4(settings)
    out["affected_4"] = vee.affected_periods(settings, 9)
    out["report_4"] = vee.run_vee(settings, "run-4")
    out["tables"] = all_tables(settings)
    return out


def test_first_run_rebuilds_everything_and_sets_the_watermark(lake: dict) -> None:
    report = lake["report_1"]
    assert report.periods_rebuilt == ["2025-08", "2025-09"]
    assert report.rows == {
        "interval_reads": 720,
        "interval_rejects": 1,
        "meter_monthly": 1,
        "register_consumption": 2,
        "register_rejects": 0,
        "sum_check": 1,
    }
    assert lake["after_1"] == [
        ("09-10 02:00", D("1.200000"), "ESTIMATED", "INTERPOLATED"),
        ("09-20 08:00", D("1.800000"), "ESTIMATED", "LIKE_DAY"),
    ]
    watermark = json.loads(vee.watermark_path(lake["settings"]).read_text())
    # each run's months, recorded under its generation for the aggregates (a later run's number wins)
    rebuilt: dict[str, int] = {}
    for generation in (1, 2, 3, 4):
        rebuilt |= dict.fromkeys(lake[f"report_{generation}"].periods_rebuilt, generation)
    assert watermark == {"ingest_seq": 10, "run_id": "run-4", "generation": 4, "rebuilt": rebuilt}


def test_correction_and_gap_filling_redo_the_estimates(lake: dict) -> None:
    assert lake["affected_2"] == {"2025-09", "2025-10"}
    assert lake["report_2"].periods_rebuilt == ["2025-09", "2025-10"]
    assert lake["after_2"] == [
        # anchors 4.1 (corrected from 1.1) and 1.4: 4.1 - 2.7 / 3 and 4.1 - 5.4 / 3
        ("09-10 02:00", D("3.200000"), "ESTIMATED", "INTERPOLATED"),
        ("09-20 08:00", D("2.000000"), "ACTUAL", "AS_READ"),
        # 24 hours between 2025-09-30 23:00 and 2025-10-02 00:00: like-day from 2025-09-24
        ("10-01 00:00", D("1.000000"), "ESTIMATED", "LIKE_DAY"),
        ("10-01 23:00", D("3.300000"), "ESTIMATED", "LIKE_DAY"),
    ]


def test_late_reading_extends_the_grid_back_and_register_reads_pair_again(lake: dict) -> None:
    assert lake["affected_3"] == {"2025-08", "2025-09", "2025-10", "2025-11", "2025-12"}
    assert lake["affected_4"] == {"2025-12"}
    monthly = [r[:9] for r in lake["tables"]["meter_monthly"]]
    assert monthly == [
        ("2025-08", "M1", "ACTIVE_IMPORT", 156, 1, 0, 0, 0, 155),
        ("2025-09", "M1", "ACTIVE_IMPORT", 720, 710, 0, 1, 9, 0),
        ("2025-10", "M1", "ACTIVE_IMPORT", 744, 720, 0, 0, 24, 0),
        ("2025-11", "M1", "ACTIVE_IMPORT", 720, 0, 0, 0, 168, 552),
        ("2025-12", "M1", "ACTIVE_IMPORT", 360, 23, 0, 1, 0, 336),
    ]
    consumption = [
        (r[4].strftime("%m-%d"), r[8], r[9]) for r in lake["tables"]["register_consumption"] if r[0] == "C1"
    ]
    assert consumption == [
        ("09-10", D("300.000000000000"), "INDEX_DIFFERENCE"),
        ("09-25", D("250.000000000000"), "INDEX_DIFFERENCE"),
        ("10-10", D("250.000000000000"), "INDEX_DIFFERENCE"),
    ]


def test_incremental_runs_equal_a_full_rebuild_row_for_row(lake: dict) -> None:
    full = full_rebuild_of(lake["settings"], lake["tmp"])
    assert {t: len(rows) for t, rows in full.items()} == {
        "interval_reads": 2700,
        "interval_rejects": 1,
        "meter_monthly": 5,
        "register_consumption": 5,
        "register_rejects": 0,
        "sum_check": 2,
    }
    for table in vee.TABLES:
        assert lake["tables"][table] == full[table], table


def test_a_run_without_new_files_changes_nothing(lake: dict) -> None:
    settings = lake["settings"]
    before = {p: p.stat().st_mtime_ns for p in settings.lake.glob("validated/**/*.parquet")}
    report = vee.run_vee(settings, "run-5")
    assert report.periods_rebuilt == []
    assert {p: p.stat().st_mtime_ns for p in settings.lake.glob("validated/**/*.parquet")} == before
    assert vee.affected_periods(settings, 10) == set()


def snapshot_home(lake: dict, name: str, meters: list[dict]) -> Settings:
    """A copy of the lake after the four batches, with a new meters snapshot (seq 11) landed."""
    home = settings_for(lake["tmp"] / name)
    shutil.copytree(lake["settings"].lake, home.lake)
    write_raw_file(home, "meters", meters, seq=11, snapshot_date=date(2025, 11, 1))
    return home


def changed(meter_id: str, **columns: object) -> list[dict]:
    return [m | columns if m["meter_id"] == meter_id else m for m in METERS]


def outside_installation(settings: Settings) -> list[tuple[str, str]]:
    """Meter and local day of every delivered reading rejected as outside its meter's installation."""
    con = memory_connection()
    out = []
    for table, at in (("interval_rejects", "interval_start"), ("register_rejects", "read_at")):
        files = sorted(validated_dir(settings, table).glob("period=*/data.parquet"))
        names = ", ".join(f"'{f.as_posix()}'" for f in files)
        out += con.execute(
            f"select meter_id, strftime({at}, '%m-%d') from read_parquet([{names}]) "
            "where rule = 'OUTSIDE_INSTALLATION'"
        ).fetchall()
    return sorted(out)


def test_the_meter_columns_vee_compares_are_all_its_models_read() -> None:
    # every VEE model that reads int_meters__current takes its columns in one `meters` CTE
    targets = [
        *vee.INTERVAL_OUTPUTS,
        *vee.REGISTER_OUTPUTS,
        "int_interval_reads__validated",
        "int_interval_reads__touched",
        "int_register_reads__touched",
        "int_register_reads__sum_checked",
    ]
    read: set[str] = set()
    readers = []
    for model in plan(targets, given=[vee.METERS]):
        if "int_meters__current" not in model.sql:
            continue
        readers.append(model.name)
        cte = re.search(r"meters as \(\s*select(.*?)from int_meters__current", model.sql, re.S)
        assert cte, model.name
        read |= {c.strip() for c in cte.group(1).split(",") if c.strip()}
    assert sorted(readers) == [
        "int_interval_reads__screened",
        "int_interval_reads__validated",
        "int_register_reads__screened",
    ]
    assert read <= {"meter_id", "installed_on", "removed_on", *vee.VEE_METER_COLUMNS}
    assert read >= set(vee.VEE_METER_COLUMNS)


def test_a_meters_snapshot_that_changes_nothing_vee_reads_rebuilds_nothing(lake: dict) -> None:
    # the same meters again, M1 on another node: VEE reads no node
    home = snapshot_home(lake, "snapshot_same", changed("M1", node_id="DT2"))
    assert vee.affected_periods(home, 10) == set()
    assert vee.run_vee(home, "run-5").periods_rebuilt == []


def test_a_meter_whose_multiplier_changes_is_rebuilt_from_its_first_month(lake: dict) -> None:
    home = snapshot_home(lake, "snapshot_multiplier", changed("M1", multiplier="20"))
    assert vee.affected_periods(home, 10) == {"2025-08", "2025-09", "2025-10", "2025-11", "2025-12"}
    vee.run_vee(home, "run-5")
    tables = all_tables(home)
    assert tables == full_rebuild_of(home, lake["tmp"] / "snapshot_multiplier_full")
    # the energy is the reading times the new multiplier: half the old one
    assert tables["interval_reads"] != lake["tables"]["interval_reads"]


def test_a_removal_rebuilds_the_months_from_it_and_those_of_the_meter_s_outside_rejects(lake: dict) -> None:
    # M1 installed on 2025-09-01 instead: its August readings are rejected (every month rebuilt, the
    # first date changed being the old 2025-01-01)
    home = snapshot_home(lake, "snapshot_removal", changed("M1", installed_on="2025-09-01"))
    assert vee.affected_periods(home, 10) == {"2025-08", "2025-09", "2025-10", "2025-11", "2025-12"}
    vee.run_vee(home, "run-5")
    assert outside_installation(home) == [("M1", "08-25")]  # the late reading of batch 3
    # then removed on 2025-11-30: the readings of 12-15 go. The months from November are rebuilt, and
    # August, whose rejects name the removal date now (and September's register sum check, which reads
    # the intervals of the month before); not October.
    removal = changed("M1", installed_on="2025-09-01", removed_on="2025-11-30")
    write_raw_file(home, "meters", removal, seq=12, snapshot_date=date(2025, 12, 1))
    assert vee.affected_periods(home, 11) == {"2025-08", "2025-09", "2025-11", "2025-12"}
    vee.run_vee(home, "run-6")
    assert all_tables(home) == full_rebuild_of(home, lake["tmp"] / "snapshot_removal_full")
    # the 24 hours of 12-15, 05:00 delivered twice (batch 4)
    assert outside_installation(home) == [("M1", "08-25"), *[("M1", "12-15")] * 25]


def test_a_register_meter_s_removal_rebuilds_only_its_register_months(lake: dict) -> None:
    # C1 removed on 2025-10-05: its read of 10-10 is rejected. C1 has no interval readings, and its
    # reads before October stay as they were.
    home = snapshot_home(lake, "snapshot_register", changed("C1", removed_on="2025-10-05"))
    assert vee.affected_periods(home, 10) == {"2025-10"}
    vee.run_vee(home, "run-5")
    assert all_tables(home) == full_rebuild_of(home, lake["tmp"] / "snapshot_register_full")
    assert outside_installation(home) == [("C1", "10-10")]


def test_a_crash_before_the_watermark_moves_is_redone(lake: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    home = settings_for(lake["tmp"] / "crash")
    batch_1(home)
    vee.run_vee(home, "run-1")
    batch_2(home)
    batch_3(home)
    batch_4(home)

    def crash(*args: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(vee, "_rebuild_registers", crash)
        with pytest.raises(OSError):
            vee.run_vee(home, "run-2")
    assert vee.read_watermark(home) == 3
    vee.run_vee(home, "run-3")
    assert all_tables(home) == lake["tables"]


def test_a_month_that_follows_on_without_a_gap_touches_only_itself(lake: dict) -> None:
    home = settings_for(lake["tmp"] / "seamless")
    batch_1(home)
    vee.run_vee(home, "run-1")
    write_raw_file(home, "interval_reads", hourly("2025-10-01 00:00", "2025-10-03 23:00"), seq=4)
    assert vee.affected_periods(home, 3) == {"2025-10"}
    # a reading before the meter's first one opens a gap that ends in August, and is the like-day
    # source of 2025-09-07 20:00
    write_raw_file(home, "interval_reads", [reading("2025-08-31 20:00", "1.000000")], seq=5)
    assert vee.affected_periods(home, 4) == {"2025-08", "2025-09"}


def test_stray_readings_do_not_stretch_the_months_rebuilt(lake: dict) -> None:
    home = settings_for(lake["tmp"] / "stray")
    batch_1(home)
    stray = [
        reading("1900-01-01 00:00", "1.000000"),
        reading("2099-12-31 23:00", "1.000000") | {"meter_id": "X"},
    ]
    write_raw_file(home, "interval_reads", stray, seq=4)
    report = vee.run_vee(home, "run-1")
    assert report.periods_rebuilt == ["1900-01", "2025-08", "2025-09", "2099-12"]
    # columns: meter_id, channel, interval_start, interval_start_utc, period, minutes, kWh, quality, rule
    assert [(r[4], r[8]) for r in table_rows(home, "interval_rejects")] == [
        ("1900-01", "OUTSIDE_INSTALLATION"),
        ("2025-09", "ABOVE_MAX_KW"),
    ]
    # meter X is in no snapshot: one UNASSIGNED interval, its own first and last reading
    assert [r[:5] for r in table_rows(home, "meter_monthly") if r[1] == "X"] == [
        ("2099-12", "X", "ACTIVE_IMPORT", 1, 1),
    ]
