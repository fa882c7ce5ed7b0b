"""CONTRACT.md v2 §2 and §4 through the whole pipeline: the company's time zone with daylight saving,
channels and 5/10-minute intervals, and meters no snapshot lists (UNASSIGNED).

Expected figures are worked out here from Python's own tz database (zoneinfo) and plain sums, not from
meterflow's code."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from etl.cli import main
from etl.lake import validated_dir
from etl.pipeline import run
from etl.settings import Settings
from etl.timezone import TimezoneError

BRUSSELS = "Europe/Brussels"
HCM = "Asia/Ho_Chi_Minh"
METERS_HEADER = (
    "meter_id,role,customer_id,node_id,reading_mode,multiplier,max_kw,register_digits,installed_on,removed_on"
)
NETWORK = [
    "node_id,node_type,parent_id,region_code,name",
    "B1,BOUNDARY,,ALL,Boundary",
    "F1,FEEDER,B1,DH,Feeder",
    "T1,DT,F1,DH,Transformer",
]


def settings_in(home: Path, zone: str) -> Settings:
    return Settings(home=home, memory_limit="1GB", threads=2, timezone=zone)


def land(settings: Settings, rel: str, lines: list[str]) -> None:
    path = settings.landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def marts(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.marts_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def validated_reads(settings: Settings, sql: str) -> list[tuple]:
    files = sorted(validated_dir(settings, "interval_reads").glob("period=*/data.parquet"))
    con = duckdb.connect()
    con.execute(f"create view v as select * from read_parquet({[f.as_posix() for f in files]})")
    return con.execute(sql).fetchall()


def quarter_hours(first_day: date, days: int, zone: str) -> list[tuple[datetime, datetime]]:
    """(local wall time, UTC instant) of every 15-minute interval of `days` local days from `first_day`."""
    tz = ZoneInfo(zone)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=tz).astimezone(UTC)
    last_day = first_day + timedelta(days=days)
    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=tz).astimezone(UTC)
    out = []
    t = start
    while t < end:
        out.append((t.astimezone(tz).replace(tzinfo=None), t.replace(tzinfo=None)))
        t += timedelta(minutes=15)
    return out


def kwh_of(i: int) -> Decimal:
    return Decimal(i % 13 + 1) / 4


# -- daylight saving -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dst_home(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Boundary meters in Brussels across the spring-forward (MS, March) and fall-back (MA, October)
    days, 15-minute readings as local times without offset, multiplier 2."""
    settings = settings_in(tmp_path_factory.mktemp("dst") / "home", BRUSSELS)
    land(settings, "reference/network_20250101.csv", NETWORK)
    land(
        settings,
        "reference/meters_20250101.csv",
        [
            METERS_HEADER,
            "MS,BOUNDARY,,B1,INTERVAL,2,,6,2020-01-01,",
            "MA,BOUNDARY,,B1,INTERVAL,2,,6,2020-01-01,",
        ],
    )
    spring = quarter_hours(date(2025, 3, 29), 3, BRUSSELS)
    autumn = quarter_hours(date(2025, 10, 25), 3, BRUSSELS)
    header = "meter_id,interval_start,interval_minutes,kwh,quality"
    # spring: the 01:45 reading of 30 March is not delivered (the gap runs across the skipped hour),
    # and a head-end line carries 02:15 of that day, which does not exist
    gap = datetime(2025, 3, 30, 1, 45)
    spring_lines = [f"MS,{local:%Y-%m-%dT%H:%M:%S},15,{kwh_of(i)},A" for i, (local, _) in enumerate(spring)]
    spring_lines = [line for line, (local, _) in zip(spring_lines, spring, strict=True) if local != gap]
    spring_lines.append("MS,2025-03-30T02:15:00,15,9,A")
    land(settings, "readings/interval_reads_20250331.csv", [header, *spring_lines])
    # autumn: the repeated hour's local times appear twice, in time order; the second 02:15 is sent
    # once more with its offset (+01:00 after the change), the same reading: an exact repeat
    autumn_lines = [f"MA,{local:%Y-%m-%dT%H:%M:%S},15,{kwh_of(i)},A" for i, (local, _) in enumerate(autumn)]
    second_0215 = next(i for i, (local, utc) in enumerate(autumn) if utc == datetime(2025, 10, 26, 1, 15))
    autumn_lines.append(f"MA,2025-10-26T02:15:00+01:00,15,{kwh_of(second_0215)},A")
    land(settings, "readings/interval_reads_20251027.csv", [header, *autumn_lines])
    report = run(settings, run_id="dst-1")
    assert report.published == settings.marts_path
    return {"settings": settings, "spring": spring, "autumn": autumn, "gap": gap}


def test_fall_back_day_has_100_quarter_hours_and_nothing_lost_or_doubled(dst_home: dict) -> None:
    settings, autumn = dst_home["settings"], dst_home["autumn"]
    per_day = Counter(local.date() for local, _ in autumn)
    assert per_day == {date(2025, 10, 25): 96, date(2025, 10, 26): 100, date(2025, 10, 27): 96}
    days = validated_reads(
        settings,
        "select interval_start::date, count(*), count(distinct interval_start_utc) from v "
        "where meter_id = 'MA' group by all order by 1",
    )
    assert days == [(d, n, n) for d, n in sorted(per_day.items())]
    # every instant carries the reading delivered for it, the repeated hour included
    got = validated_reads(
        settings, "select interval_start_utc, recorded_kwh, quality from v where meter_id = 'MA' order by 1"
    )
    assert got == [(utc, kwh_of(i), "ACTUAL") for i, (_, utc) in enumerate(autumn)]
    total = sum(kwh_of(i) for i in range(len(autumn)))
    assert marts(
        settings,
        "select expected_intervals, actual_intervals, estimated_intervals, missing_intervals, recorded_qty, "
        "validated_qty from mart_meter_monthly where meter_id = 'MA'",
    ) == [(292, 292, 0, 0, total, 2 * total)]
    assert marts(
        settings, "select kwh_received from mart_kpi_monthly where period = '2025-10' and region_code = 'ALL'"
    ) == [(2 * total,)]


def test_spring_forward_day_has_92_quarter_hours_and_the_gap_spans_the_skipped_hour(dst_home: dict) -> None:
    settings, spring, gap = dst_home["settings"], dst_home["spring"], dst_home["gap"]
    per_day = Counter(local.date() for local, _ in spring)
    assert per_day == {date(2025, 3, 29): 96, date(2025, 3, 30): 92, date(2025, 3, 31): 96}
    days = validated_reads(
        settings, "select interval_start::date, count(*) from v where meter_id = 'MS' group by 1 order by 1"
    )
    assert days == sorted(per_day.items())
    # 01:45 is one interval between 01:30 and 03:00 (the next instant): interpolated halfway
    i = next(k for k, (local, _) in enumerate(spring) if local == gap)
    halfway = (kwh_of(i - 1) + kwh_of(i + 1)) / 2
    assert validated_reads(
        settings,
        f"select recorded_kwh, quality, rule from v where interval_start = '{gap}' and meter_id = 'MS'",
    ) == [(halfway, "ESTIMATED", "INTERPOLATED")]
    delivered = sum(kwh_of(k) for k in range(len(spring)) if k != i)
    assert marts(
        settings,
        "select expected_intervals, actual_intervals, estimated_intervals, missing_intervals, recorded_qty, "
        "validated_qty from mart_meter_monthly where meter_id = 'MS'",
    ) == [(284, 283, 1, 0, delivered, 2 * (delivered + halfway))]


def test_a_local_time_in_the_skipped_hour_is_quarantined(dst_home: dict) -> None:
    settings = dst_home["settings"]
    folder = settings.lake / "quarantine" / "interval_reads"
    rows = duckdb.sql(f"select line_no, rule, reason from read_parquet('{folder}/*.parquet')").fetchall()
    # header + 284 quarter hours - the one not delivered, then the skipped-hour line
    assert rows == [
        (285, "nonexistent_time",
         "column interval_start has '2025-03-30T02:15:00', a local time that does not exist in "
         "Europe/Brussels (the hour the clocks skip)"),
    ]  # fmt: skip


def test_the_time_zone_of_a_home_that_holds_data_cannot_change(
    dst_home: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = dst_home["settings"].home
    with pytest.raises(TimezoneError, match="holds data in Europe/Brussels"):
        run(settings_in(home, HCM), run_id="dst-2")
    monkeypatch.setenv("METERFLOW_HOME", str(home))
    monkeypatch.setenv("METERFLOW_TIMEZONE", "Asia/Tokyo")
    assert main(["run"]) == 1
    shown = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "METERFLOW_TIMEZONE is Asia/Tokyo" in shown and "holds data in Europe/Brussels" in shown
    # nothing was read in the wrong zone: the home's own zone still runs, with nothing new to do
    again = run(settings_in(home, BRUSSELS), run_id="dst-3")
    assert [f.status for f in again.ingest.files] == ["DUPLICATE"] * 4
    total = sum(kwh_of(i) for i in range(len(dst_home["autumn"])))
    assert marts(
        dst_home["settings"],
        "select kwh_received from mart_kpi_monthly where period = '2025-10' and region_code = 'ALL'",
    ) == [(2 * total,)]


# -- channels and UNASSIGNED meters ----------------------------------------------------------------


def profile(start: str, values: list[str | None], minutes: int, channel: str, meter: str = "MD") -> list[str]:
    t0 = datetime.fromisoformat(start)
    return [
        f"{meter},{(t0 + timedelta(minutes=minutes * k)):%Y-%m-%dT%H:%M:%S},{minutes},{v},A,{channel}"
        for k, v in enumerate(values)
        if v is not None
    ]


def test_channels_stay_apart_through_vee_to_the_meter_mart_and_export_nets_off(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "home", HCM)
    land(settings, "reference/network_20250101.csv", NETWORK)
    land(
        settings,
        "reference/meters_20250101.csv",
        [METERS_HEADER, "MD,DT,,T1,INTERVAL,10,2,6,2020-01-01,", "MB,BOUNDARY,,B1,INTERVAL,1,,6,2020-01-01,"],
    )
    imports = ["0.05", "0.06", "0.07", "0.08", None, "0.10", "0.11", "0.12", "0.13", "0.14", "0.15", "0.16"]
    exports = ["0.02", "0.02", "0.03", "0.03", "0.04", "0.04"]
    # max_kw 2 allows 0.1666 kWh in 5 minutes; reactive kvarh far above max_kw x hours is never checked
    # against it, and never counted as energy
    reactive = ["5", "6", "7", "8"]
    header = "meter_id,interval_start,interval_minutes,kwh,quality,channel"
    lines = [
        *profile("2025-09-01T00:00:00", imports, 5, "ACTIVE_IMPORT"),
        *profile("2025-09-01T00:00:00", exports, 10, "ACTIVE_EXPORT"),
        *profile("2025-09-01T00:00:00", reactive, 15, "REACTIVE_IMPORT"),
    ]
    land(settings, "readings/interval_reads_20250901_md.csv", [header, *lines])
    # a file without the channel column: ACTIVE_IMPORT
    land(
        settings,
        "readings/interval_reads_20250901_mb.csv",
        ["meter_id,interval_start,interval_minutes,kwh,quality", "MB,2025-09-01T00:00:00,60,40,A"],
    )
    assert run(settings, run_id="ch-1").published == settings.marts_path
    rows = marts(
        settings,
        "select meter_id, channel, role, unit, expected_intervals, actual_intervals, estimated_intervals, "
        "missing_intervals, recorded_qty, validated_qty from mart_meter_monthly order by meter_id, channel",
    )
    # the missing 00:20 import is interpolated between 0.08 and 0.10
    delivered_import = sum(Decimal(v) for v in imports if v is not None)
    export = sum(Decimal(v) for v in exports)
    assert rows == [
        ("MB", "ACTIVE_IMPORT", "BOUNDARY", "kWh", 1, 1, 0, 0, Decimal(40), Decimal(40)),
        ("MD", "ACTIVE_EXPORT", "DT", "kWh", 6, 6, 0, 0, export, 10 * export),
        ("MD", "ACTIVE_IMPORT", "DT", "kWh", 12, 11, 1, 0, delivered_import,
         10 * (delivered_import + Decimal("0.09"))),
        ("MD", "REACTIVE_IMPORT", "DT", "kvarh", 4, 4, 0, 0, Decimal(26), Decimal(260)),
    ]  # fmt: skip
    # kwh_in of T1: import (1.17 delivered + 0.09 estimated) minus export 0.18, x 10
    assert delivered_import == Decimal("1.17") and export == Decimal("0.18")
    assert marts(settings, "select kwh_in from mart_energy_balance_monthly where node_id = 'T1'") == [
        (Decimal("10.8"),)
    ]


def test_an_unassigned_meter_counts_in_company_figures_once_a_snapshot_lists_it(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "home", HCM)
    land(settings, "reference/network_20250101.csv", NETWORK)
    land(
        settings,
        "reference/meters_20250101.csv",
        [METERS_HEADER, "MB,BOUNDARY,,B1,INTERVAL,1,,6,2020-01-01,"],
    )
    header = "meter_id,interval_start,interval_minutes,kwh,quality"
    land(
        settings,
        "readings/interval_reads_20250901.csv",
        [
            header,
            "MB,2025-09-01T00:00:00,30,100,A",
            "MB,2025-09-01T00:30:00,30,100,A",
            "MX,2025-09-01T00:00:00,30,7.5,A",
            "MX,2025-09-01T01:00:00,30,8.5,E",
        ],
    )
    assert run(settings, run_id="un-1").published == settings.marts_path
    meter_rows = "select meter_id, role, expected_intervals, actual_intervals, upstream_estimated_intervals, "
    meter_rows += "missing_intervals, validated_qty from mart_meter_monthly order by meter_id"
    received = "select kwh_received from mart_kpi_monthly where period = '2025-09' and region_code = 'ALL'"
    # MX: multiplier 1, 00:00 to 01:00 expected, 00:30 missing (no actual anchor after it)
    assert marts(settings, meter_rows) == [
        ("MB", "BOUNDARY", 2, 2, 0, 0, Decimal(200)),
        ("MX", "UNASSIGNED", 3, 1, 1, 1, Decimal(16)),
    ]
    assert marts(settings, received) == [(Decimal(200),)]
    land(
        settings,
        "reference/meters_20250915.csv",
        [
            METERS_HEADER,
            "MB,BOUNDARY,,B1,INTERVAL,1,,6,2020-01-01,",
            "MX,BOUNDARY,,B1,INTERVAL,3,,6,2020-01-01,",
        ],
    )
    assert run(settings, run_id="un-2").published == settings.marts_path
    assert marts(settings, meter_rows) == [
        ("MB", "BOUNDARY", 2, 2, 0, 0, Decimal(200)),
        ("MX", "BOUNDARY", 3, 1, 1, 1, Decimal(48)),
    ]
    assert marts(settings, received) == [(Decimal(248),)]


def test_a_zone_name_is_checked_and_a_home_built_before_zones_were_recorded_is_in_the_default(
    tmp_path: Path,
) -> None:
    from etl.duck import connect

    with pytest.raises(TimezoneError, match="not an IANA time zone name"):
        connect(settings_in(tmp_path / "a", "Mars/Olympus"))
    legacy = tmp_path / "legacy"
    (legacy / "lake" / "raw").mkdir(parents=True)
    with pytest.raises(TimezoneError, match="holds data in Asia/Ho_Chi_Minh"):
        connect(settings_in(legacy, BRUSSELS))
    connect(settings_in(legacy, HCM)).close()
    assert (legacy / "lake" / "_timezone.json").read_text(
        encoding="utf-8"
    ) == '{"timezone": "Asia/Ho_Chi_Minh"}\n'


# -- a generated company in a zone with daylight saving, with rooftop solar ----------------------------


def hours_in_month(month: str, zone: str) -> Decimal:
    """The month's length in hours by the zone's clock (743, 744 or 745 around a daylight saving change)."""
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(month + "-01").replace(tzinfo=tz)
    end = (start + timedelta(days=32)).replace(day=1)
    return Decimal((end.astimezone(UTC) - start.astimezone(UTC)) / timedelta(hours=1))


def test_a_generated_company_in_brussels_with_solar_equals_its_truth(tmp_path: Path) -> None:
    from etl.generate import generate
    from etl.synth.compare import compare_with_truth

    home = tmp_path / "brussels"
    generate(home, customers=300, start="2025-02", end="2025-11", seed=3, fault_rate=0.01,
             timezone=BRUSSELS, solar_share=0.3)  # fmt: skip
    settings = settings_in(home, BRUSSELS)
    assert run(settings, run_id="gen-1").published == settings.marts_path
    found = {c.truth: c for c in compare_with_truth(settings)}
    assert [c.describe() for c in found.values() if not c.ok] == []
    assert found["meter_mart"].rows == found["meter_monthly"].rows > 10 * 7
    # the daylight saving months have an hour less and an hour more of intervals, on every channel
    rows = marts(
        settings,
        "select period, channel, interval_minutes, count(*), min(expected_intervals), "
        "max(expected_intervals) "
        "from mart_meter_monthly join (select distinct meter_id, interval_minutes from read_parquet("
        f"'{settings.lake.as_posix()}/raw/interval_reads/*/*.parquet', hive_partitioning = false)) "
        "using (meter_id) where period in ('2025-03', '2025-10') group by all order by all",
    )
    assert {r[1] for r in rows} == {"ACTIVE_IMPORT", "ACTIVE_EXPORT"}
    for period, _channel, minutes, _n, low, high in rows:
        expected = hours_in_month(period, BRUSSELS) * 60 / minutes
        assert low == high == expected
    assert hours_in_month("2025-03", BRUSSELS) == 743 and hours_in_month("2025-10", BRUSSELS) == 745
