"""The public real exports (../shared/external-meter-data) through the whole pipeline: each set of files is
dropped into a fresh data home in its own time zone, `meterflow run` publishes, and `mart_meter_monthly`
is compared per meter, channel and month with figures read from the files here, by a few lines of
independent parsing (csv, ElementTree, zoneinfo), not by meterflow's readers. CONTRACT.md v2 §2, §4, §6,
§8: every channel is expected from its own first to its own last reading; a fall-back day has 100 and a
spring-forward day 92 quarter hours; every record of every file is accepted or quarantined.

The expected VEE estimates follow the contract's rule (a run of at most 4 missing intervals between actual
readings is interpolated; a longer one takes the actual reading 7 days earlier; the rest stays missing)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import duckdb
import pytest

from etl.lake import manifest_files, validated_dir
from etl.pipeline import run
from etl.settings import Settings
from tests.shared_data import external_meter_data

ROOT = Path(__file__).resolve().parents[1]
SHARED = external_meter_data()
NEM = SHARED / "nem" / "aguinane-nem-reader" / "examples"
HOUSEHOLD = (
    SHARED / "nem" / "patrickvorgers-Home-Assistant-Import-Energy-Data" / "nem12" / "power-redacted.csv"
)
GB = SHARED / "greenbutton"
ELECTRICITY = GB / "vladistan-greenbutton_objects" / "tests" / "data" / "electricity"
CSV = SHARED / "csv" / "patrickvorgers-Home-Assistant-Import-Energy-Data"
FLUVIUS_EN = (
    CSV
    / "fluvius"
    / "Consumption_history_electricity_541448820052377134_20231022_20250426_15_minute_totals.csv"
)
FLUVIUS_NL = (
    CSV
    / "fluvius"
    / "Verbruikshistoriek_elektriciteit_123456789123456789_20211012_20240929_kwartiertotalen.csv"
)
ENEL = CSV / "enel-distribuzione" / "ExportData_settembre.csv"
LIANDER = CSV / "liander" / "csv_bijlage.csv"
PROFILES = ROOT / "docs" / "profiles"


@dataclass(frozen=True)
class Read:
    """One delivered interval of a file: its key, UTC instant, length, flag (A, E or N = no reading)."""

    meter: str
    channel: str
    utc: datetime
    minutes: int
    flag: str
    kwh: Decimal


# -- independent readings of the files --------------------------------------------------------------------

NEM_CHANNEL = {"E": "ACTIVE_IMPORT", "B": "ACTIVE_EXPORT", "Q": "REACTIVE_IMPORT", "K": "REACTIVE_EXPORT"}
NEM_UNIT = {"WH": Decimal("0.001"), "KWH": Decimal(1), "VARH": Decimal("0.001"), "KVARH": Decimal(1)}
NEM_TIME = timedelta(hours=10)  # NEM time: UTC+10, no daylight saving


def nem12_text(path: Path) -> str:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode() for n in sorted(z.namelist()))
    return path.read_text(encoding="utf-8")


def nem12_reads(path: Path) -> list[Read]:
    """Every interval value of a well-formed NEM12 file (values of V records take their 400 record's flag)."""
    days: list[tuple] = []
    head: tuple = ()
    for line in nem12_text(path).splitlines():
        f = line.strip().split(",")
        if f[0] == "200":
            head = (f"{f[1]}-{f[4][1]}", NEM_CHANNEL[f[4][0]], NEM_UNIT[f[7].upper()], int(f[8]))
        elif f[0] == "300":
            n = 1440 // head[3]
            days.append((*head, f[1], f[2 : 2 + n], f[2 + n][0], []))
        elif f[0] == "400":
            days[-1][-1].append((int(f[1]), int(f[2]), f[3][0]))
    reads = []
    for meter, channel, factor, minutes, day, values, quality, events in days:
        midnight = datetime.strptime(day, "%Y%m%d") - NEM_TIME
        for i, value in enumerate(values):
            flag = quality if quality != "V" else [q for a, b, q in events if a <= i + 1 <= b][-1]
            flag = {"A": "A", "N": "N"}.get(flag, "E")  # E, S, F: estimated upstream
            kwh = (abs(Decimal(value)) * factor).quantize(Decimal("0.000001"))
            reads.append(Read(meter, channel, midnight + timedelta(minutes=i * minutes), minutes, flag, kwh))
    return reads


def local_to_utc(wall: datetime, zone: str, second: bool) -> datetime:
    """A local wall time as a UTC instant; `second` picks the later of a repeated hour's two instants."""
    return wall.replace(tzinfo=ZoneInfo(zone), fold=int(second)).astimezone(UTC).replace(tzinfo=None)


def fluvius_reads(text: str, zone: str = "Europe/Brussels") -> list[Read]:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    col = {name: i for i, name in enumerate(rows[0])}
    english = "Volume" in col and "From (date)" in col
    date_col, time_col = (
        (col["From (date)"], col["From (time)"]) if english else (col["Van datum"], col["Van tijdstip"])
    )
    ean_col = col["EAN code"] if english else col["EAN"]
    register_col = col["Register"]
    status_col = col["Validation status"] if english else col["Validatiestatus"]
    seen: set[tuple] = set()
    reads = []
    for r in rows[1:]:
        wall = datetime.strptime(r[date_col].replace("-", "/") + " " + r[time_col], "%d/%m/%Y %H:%M:%S")
        meter = r[ean_col].strip('="')
        channel = (
            "ACTIVE_EXPORT" if r[register_col].split()[0] in ("Injection", "Injectie") else "ACTIVE_IMPORT"
        )
        status = r[status_col]
        flag = "N" if status in ("No consumption", "Geen verbruik") else "E" if status == "Geschat" else "A"
        key = (meter, channel, wall)
        utc = local_to_utc(wall, zone, second=key in seen)  # the repeated hour, in file order
        seen.add(key)
        kwh = Decimal(r[col["Volume"]].replace(",", ".")) if flag != "N" else Decimal(0)
        reads.append(Read(meter, channel, utc, 15, flag, kwh))
    return reads


def enel_reads(path: Path, meter: str, zone: str = "Europe/Rome") -> list[Read]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8").lstrip("\ufeff")), delimiter=";"))
    reads = []
    for r in rows[1:]:
        if not r or not r[0].strip():
            continue
        day = datetime.strptime(r[0], "%d/%m/%Y")
        for i, value in enumerate(r[1:97]):
            utc = local_to_utc(day + timedelta(minutes=15 * i), zone, second=False)
            reads.append(Read(meter, "ACTIVE_IMPORT", utc, 15, "A", Decimal(value.replace(",", "."))))
    return reads


def green_button_reads(
    path: Path, meter: str, text: str | None = None, channel: str = "ACTIVE_IMPORT"
) -> tuple[list[Read], int]:
    """Hourly readings of a file (or its `text`) whose one MeterReading is Wh of `channel` with multiplier
    0 (a negative export value counts as its magnitude); and the number of all its readings."""
    if text is not None:
        data = text.encode()
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            data = next(z.read(n) for n in z.namelist() if n.endswith(".xml"))
    else:
        data = path.read_bytes()
    readings = [e for e in ElementTree.fromstring(data).iter() if e.tag.endswith("}IntervalReading")]
    reads = []
    for e in readings:
        field = {c.tag.split("}")[1]: c for c in e.iter()}
        seconds = int(field["duration"].text or 0)
        if seconds == 3600:
            utc = datetime.fromtimestamp(int(field["start"].text or 0), UTC).replace(tzinfo=None)
            kwh = abs(Decimal(field["value"].text or 0)) / 1000
            reads.append(Read(meter, channel, utc, 60, "A", kwh))
    return reads, len(readings)


# -- what mart_meter_monthly should say, by the contract ---------------------------------------------------


def expected_monthly(reads: list[Read], zone: str) -> dict[tuple[str, str, str], tuple]:
    """(period, meter, channel) -> (expected, actual, upstream estimated, VEE estimated, missing, recorded).

    Every interval from a channel's first to its last reading is expected (readings of one length per
    channel); a delivery's N intervals are no reading."""
    tz = ZoneInfo(zone)
    by_channel: dict[tuple[str, str], dict[datetime, Read]] = defaultdict(dict)
    for r in reads:
        if r.flag != "N":
            by_channel[(r.meter, r.channel)][r.utc] = r
    out: dict[tuple[str, str, str], list] = defaultdict(lambda: [0, 0, 0, 0, 0, Decimal(0)])
    for (meter, channel), got in by_channel.items():
        (minutes,) = {r.minutes for r in got.values()}
        step = timedelta(minutes=minutes)
        grid = []
        t, last = min(got), max(got)
        while t <= last:
            grid.append(t)
            t += step
        actual = {t for t, r in got.items() if r.flag == "A"}
        estimated: set[datetime] = set()
        i = 0
        while i < len(grid):  # runs of intervals without a reading
            if grid[i] in got:
                i += 1
                continue
            j = i
            while j < len(grid) and grid[j] not in got:
                j += 1
            run_ = grid[i:j]
            if len(run_) <= 4 and grid[i - 1] in actual and grid[j] in actual:
                estimated.update(run_)
            else:
                estimated.update(t for t in run_ if t - timedelta(days=7) in actual)
            i = j
        for t in grid:
            period = t.replace(tzinfo=UTC).astimezone(tz).strftime("%Y-%m")
            row = out[(period, meter, channel)]
            row[0] += 1
            if t in got:
                row[1 if got[t].flag == "A" else 2] += 1
                row[5] += got[t].kwh
            elif t in estimated:
                row[3] += 1
            else:
                row[4] += 1
    return {k: tuple(v) for k, v in out.items()}


# -- data homes ---------------------------------------------------------------------------------------------


def home_with(
    tmp_path_factory: pytest.TempPathFactory,
    zone: str,
    files: list[Path],
    profiles: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
) -> Settings:
    home = tmp_path_factory.mktemp("home") / "home"
    settings = Settings(home=home, memory_limit="1GB", threads=2, timezone=zone)
    readings = settings.landing / "readings"
    readings.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, readings / path.name)
    for name, text in (extra or {}).items():
        (readings / name).write_text(text, encoding="utf-8")
    if profiles:
        (home / "profiles").mkdir()
        for name in profiles:
            shutil.copyfile(PROFILES / name, home / "profiles" / name)
    assert run(settings, run_id="e2e-1").published == settings.marts_path
    return settings


def mart(settings: Settings) -> dict[tuple[str, str, str], tuple]:
    con = duckdb.connect(str(settings.marts_path), read_only=True)
    try:
        rows = con.execute(
            "select period, meter_id, channel, expected_intervals, actual_intervals, "
            "upstream_estimated_intervals, estimated_intervals, missing_intervals, recorded_qty "
            "from mart_meter_monthly"
        ).fetchall()
    finally:
        con.close()
    return {(p, m, c): tuple(rest) for p, m, c, *rest in rows}


def accounting(settings: Settings) -> dict[str, tuple[int, int, int]]:
    """source file -> (rows in, accepted, quarantined), from the lake's manifest."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select source_file, rows_in, rows_accepted, rows_quarantined from read_parquet(?)",
            [[p.as_posix() for p in manifest_files(settings)]],
        ).fetchall()
    finally:
        con.close()
    for name, n_in, accepted, quarantined in rows:
        assert n_in == accepted + quarantined, name
    return {
        name.removeprefix("readings/"): (n_in, accepted, quarantined)
        for name, n_in, accepted, quarantined in rows
    }


# -- NEM12 in NEM time ------------------------------------------------------------------------------------

BRISBANE = "Australia/Brisbane"
NEM12_FILES = [
    NEM / "unzipped" / "Example_WesternPower.csv",  # E1 B1 Q1 K1, KWH / KVARH
    NEM / "unzipped" / "Example_NEM12_multiple_meters.csv",  # two NMIs, Wh and VArh, E1 E2 B1 Q1 K2
    NEM / "unzipped" / "Example_NEM12_multiple_quality.csv",  # A / F14 / S14 through 400 records
    NEM / "nem12" / "NEM12#000000000000002#CNRGYMDP#NEMMCO.zip",  # B1 E1 K1 Q1, a 200 record every day
    NEM / "nem12" / "NEM12#SCENARIO1005032705#ENERGEXM#NEMMCO.zip",  # 72 N intervals, meter exchange
    NEM / "nem12" / "NEM12#NEM1208145Scenario8#GLOBALM#NEMMCO.ZIP",  # 14 x 400, WH
    NEM / "nem12" / "NEM12#Scenario10#POWERMDP#NEMMCO.zip",  # meter exchange E1 -> B2 E2
    NEM / "nem12" / "NEM12#000000000000009#CNRGYMDP#NEMMCO.zip",  # A and E52 days, 500 records
    HOUSEHOLD,  # the real household: E1 import and B1 export, 5-minute, 106 days, no 100 / 900
]


@pytest.fixture(scope="module")
def nem_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return home_with(tmp_path_factory, BRISBANE, NEM12_FILES)


def test_nem12_files_in_nem_time_figure_by_figure(nem_home: Settings) -> None:
    reads = [r for path in NEM12_FILES for r in nem12_reads(path)]
    expected = expected_monthly(reads, BRISBANE)
    assert mart(nem_home) == expected
    # import and export of the real household stay apart, each expected from its own first reading
    nov = ("2023-11", "(redacted)-1")
    assert expected[(*nov, "ACTIVE_IMPORT")][0] == expected[(*nov, "ACTIVE_EXPORT")][0] == 30 * 288
    assert expected[(*nov, "ACTIVE_EXPORT")][5] > 0
    # the meter exchange of the ENERGEXM file: the old meter's last 24 and the new meter's first 24 half
    # hours of 2005-03-28 are null (N), outside each channel's first..last reading, so not expected
    assert expected[("2005-03", "NEM1210184-1", "ACTIVE_IMPORT")][:5] == (48 + 24, 48 + 24, 0, 0, 0)
    assert expected[("2005-03", "NEM1210184-2", "ACTIVE_EXPORT")][:5] == (24 + 3 * 48, 24 + 3 * 48, 0, 0, 0)


def test_nem12_every_record_is_accepted_or_quarantined(nem_home: Settings) -> None:
    got = accounting(nem_home)
    for path in NEM12_FILES:
        reads = nem12_reads(path)
        nulls = sum(r.flag == "N" for r in reads)
        assert got[path.name] == (len(reads), len(reads) - nulls, nulls), path.name


# -- vendor CSV exports with their profiles ------------------------------------------------------------------

BRUSSELS = "Europe/Brussels"
SPRING_EAN = "999000000000000001"
EAN = "123456879123456789"  # both Fluvius exports (redacted)
SPRING_NAME = f"Consumption_history_electricity_{SPRING_EAN}_20240330_20240331_15_minute_totals.csv"


def spring_forward_export() -> str:
    """A Fluvius English export of 30 and 31 March 2024: the night of the 31st skips 02:00-03:00, so that
    day has 92 quarter hours (written in the file's own layout, one Offtake Day row per quarter hour)."""
    tz = ZoneInfo(BRUSSELS)
    lines = [
        "\ufeffFrom (date);From (time);Until (date);Until (time);EAN code;Meter;Meter type;Register;"
        "Volume;Unit;Validation status;Description"
    ]
    t = datetime(2024, 3, 30, tzinfo=tz).astimezone(UTC)
    end = datetime(2024, 4, 1, tzinfo=tz).astimezone(UTC)
    i = 0
    while t < end:
        a, b = t.astimezone(tz), (t + timedelta(minutes=15)).astimezone(tz)
        volume = f"0,{i % 97:03d}"
        lines.append(
            f'{a:%d/%m/%Y};{a:%H:%M:%S};{b:%d/%m/%Y};{b:%H:%M:%S};="{SPRING_EAN}";1SAG0000000001;'
            f"Digital meter;Offtake Day;{volume};kWh;Read;"
        )
        t += timedelta(minutes=15)
        i += 1
    return "\r\n".join(lines) + "\r\n"


# Both Fluvius exports carry the same (redacted) EAN, 123456879123456789, two years apart: each goes to a
# home of its own, as two households' exports would (docs/sources.md, "Limits": in one home the channel's
# first-to-last span would run across the two years between them).
BRUSSELS_HOMES = {"en": [FLUVIUS_EN], "nl": [FLUVIUS_NL]}


@pytest.fixture(scope="module", params=sorted(BRUSSELS_HOMES))
def brussels_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Europe/Brussels homes: the English export with the spring-forward export, and the Dutch export."""
    extra = {SPRING_NAME: spring_forward_export()} if request.param == "en" else {}
    return home_with(
        tmp_path_factory, BRUSSELS, BRUSSELS_HOMES[request.param], profiles=("fluvius.toml",), extra=extra
    )


def brussels_reads(settings: Settings) -> dict[str, list[Read]]:
    """The Fluvius files of a home, read here."""
    names = {p.name for p in (settings.landing / "readings").iterdir()}
    out = {
        path.name: fluvius_reads(path.read_text(encoding="utf-8"))
        for path in (FLUVIUS_EN, FLUVIUS_NL)
        if path.name in names
    }
    if SPRING_NAME in names:
        out[SPRING_NAME] = fluvius_reads(spring_forward_export())
    return out


def validated_by_day(settings: Settings, meter: str, day: str) -> dict[str, tuple[int, int, Decimal]]:
    """channel -> (expected intervals, intervals with a delivered reading, their kWh) of one meter's local
    day in the validated layer (one row per expected interval)."""
    files = [
        p.as_posix() for p in sorted(validated_dir(settings, "interval_reads").glob("period=*/data.parquet"))
    ]
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select channel, count(*), count(distinct interval_start_utc), count(recorded_kwh), "
            "sum(recorded_kwh) from read_parquet(?) "
            "where meter_id = ? and cast(interval_start as date) = ? group by channel",
            [files, meter, day],
        ).fetchall()
    finally:
        con.close()
    assert all(n == distinct for _, n, distinct, _, _ in rows)  # no instant twice
    return {channel: (n, delivered, total) for channel, n, _, delivered, total in rows}


def test_fluvius_exports_in_brussels_figure_by_figure(brussels_home: Settings) -> None:
    reads = [r for file_reads in brussels_reads(brussels_home).values() for r in file_reads]
    expected = expected_monthly(reads, BRUSSELS)
    assert mart(brussels_home) == expected
    if FLUVIUS_EN.name in brussels_reads(brussels_home):
        # the README's offtake per month of the English file
        offtake = {p: v[5] for (p, m, c), v in expected.items() if m == EAN and c == "ACTIVE_IMPORT"}
        assert offtake == {
            "2023-10": Decimal("210.958"),
            "2023-11": Decimal("594.133"),
            "2023-12": Decimal("657.230"),
        }
        # the spring-forward export: 96 + 92 quarter hours in March
        assert expected[("2024-03", SPRING_EAN, "ACTIVE_IMPORT")][:5] == (96 + 92, 96 + 92, 0, 0, 0)


FALL_BACK_DAY = {FLUVIUS_EN.name: "2023-10-29", FLUVIUS_NL.name: "2021-10-31"}


def test_the_repeated_october_hour_gives_100_quarter_hours_nothing_lost_or_doubled(
    brussels_home: Settings,
) -> None:
    """The autumn night's 02:00-02:45 come twice, the last quarter of the first hour written 02:45 -> 02:00:
    100 expected quarter hours per channel, every delivered one once, with its own kWh."""
    tz = ZoneInfo(BRUSSELS)
    for name, reads in brussels_reads(brussels_home).items():
        if name not in FALL_BACK_DAY:
            continue
        day = FALL_BACK_DAY[name]
        whole_day = [r for r in reads if f"{r.utc.replace(tzinfo=UTC).astimezone(tz):%Y-%m-%d}" == day]
        assert len({(r.channel, r.utc) for r in whole_day}) == len(whole_day) == 200  # 2 channels x 100
        on_day = [r for r in whole_day if r.flag != "N"]
        got = validated_by_day(brussels_home, EAN, day)
        if (
            not on_day
        ):  # the Dutch file's last day: every quarter hour "Geen verbruik", after its last reading
            assert got == {}, name
            continue
        want = {
            c: (
                sum(r.channel == c for r in on_day),
                sum((r.kwh for r in on_day if r.channel == c), Decimal(0)),
            )
            for c in {r.channel for r in on_day}
        }
        assert {c: v[1:] for c, v in got.items()} == want, name
        assert {c: v[0] for c, v in got.items()} == {"ACTIVE_IMPORT": 100, "ACTIVE_EXPORT": 100}, name
        if name == FLUVIUS_EN.name:  # every quarter hour of that day read in both channels
            assert {c: v[1] for c, v in got.items()} == {"ACTIVE_IMPORT": 100, "ACTIVE_EXPORT": 100}


def test_the_repeated_hour_is_no_repeated_key_to_the_raw_checks(brussels_home: Settings) -> None:
    con = duckdb.connect(str(brussels_home.marts_path), read_only=True)
    try:
        rows = con.execute(
            "select rows_failed, passed from mart_data_quality "
            "where suite = 'raw.interval_reads' and check_name like 'expect_compound_columns_to_be_unique%'"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(0, True)]


def test_the_skipped_march_hour_gives_92_quarter_hours(brussels_home: Settings) -> None:
    if SPRING_NAME not in brussels_reads(brussels_home):
        return  # the spring-forward export is in the English file's home
    day = [r for r in fluvius_reads(spring_forward_export()) if r.utc >= datetime(2024, 3, 30, 23)]
    assert len(day) == 92  # local 31 March from 00:00 (UTC+1)
    assert validated_by_day(brussels_home, SPRING_EAN, "2024-03-31") == {
        "ACTIVE_IMPORT": (92, 92, sum((r.kwh for r in day), Decimal(0)))
    }


def test_fluvius_every_record_is_accepted_or_quarantined(brussels_home: Settings) -> None:
    got = accounting(brussels_home)
    readme = {FLUVIUS_EN.name: (13640, 13638, 2), FLUVIUS_NL.name: (3848, 1282, 2566)}
    for name, reads in brussels_reads(brussels_home).items():
        nulls = sum(r.flag == "N" for r in reads)
        assert got[name] == (len(reads), len(reads) - nulls, nulls), name
        assert got[name] == readme.get(name, got[name])


ROME = "Europe/Rome"
POD = "IT001E00000000"  # docs/profiles/e-distribuzione.toml: the export names no meter


@pytest.fixture(scope="module")
def rome_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return home_with(tmp_path_factory, ROME, [ENEL], profiles=("e-distribuzione.toml",))


def test_e_distribuzione_export_in_rome_figure_by_figure(rome_home: Settings) -> None:
    reads = enel_reads(ENEL, POD)
    expected = expected_monthly(reads, ROME)
    assert mart(rome_home) == expected
    assert expected == {("2024-09", POD, "ACTIVE_IMPORT"): (2880, 2880, 0, 0, 0, Decimal("269.281"))}
    assert accounting(rome_home) == {ENEL.name: (2880, 2880, 0)}


AMSTERDAM = "Europe/Amsterdam"


def test_liander_register_reads_in_amsterdam_every_record_accounted_for(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = home_with(tmp_path_factory, AMSTERDAM, [LIANDER], profiles=("liander.toml",))
    rows = [r for r in csv.reader(io.StringIO(LIANDER.read_text(encoding="utf-8")))][1:]
    rows = [r for r in rows if r and r[0].strip()]
    electricity = sum(r[1].startswith("E") for r in rows)
    # reading1..4 are four records a row; an electricity row's import readings 1 and 2 are accepted
    assert accounting(settings) == {
        LIANDER.name: (4 * len(rows), 2 * electricity, 4 * len(rows) - 2 * electricity)
    }
    assert mart(settings) == {}  # register reads make no interval figures


# -- Green Button, each file in its own zone -----------------------------------------------------------


def usage_point(path: Path) -> str:
    """The UsagePoint's link path after the data custodian's `.../resource/` prefix."""
    data = path.read_text(encoding="utf-8")
    (href,) = {h for h in re.findall(r'href="([^"]*UsagePoint/\d+)"', data)}
    return href.split("/resource/")[-1]


GREEN_BUTTON = {  # zone: files (the zone from the file's tzOffset / DST rules, or the utility's place)
    "America/Los_Angeles": [
        ELECTRICITY / "Coastal_Multi_Family_Jan_1_2011_to_Jan_1_2012_RetailCustomer_5.xml"
    ],
    "America/New_York": [
        ELECTRICITY / "TestGBDataHourlyNineDaysBinnedDaily.xml",
        ELECTRICITY / "TestGBDataOneYearDailyBinnedMonthly.xml",  # daily reads only: quarantined
    ],
    "America/Toronto": [
        GB / "cityssm-node-green-button-parser" / "test" / "data" / "intervals_APUC000000_electric.xml"
    ],
}


ALGOMA = GREEN_BUTTON["America/Toronto"][0]
EXPORT_NAME = "intervals_APUC000000_export.xml"


def algoma_as_export() -> str:
    """The Algoma Power file as its reverse flow: flowDirection 19 (export), every value signed negative,
    as some systems write export energy (CONTRACT.md §8: its magnitude is taken)."""
    text = ALGOMA.read_text(encoding="utf-8")
    text = re.sub(r"<(\w+:)?flowDirection>1<", r"<\1flowDirection>19<", text)
    text = re.sub(r"<(\w+:)?value>(\d)", r"<\1value>-\2", text)
    assert text.count("flowDirection>19<") == 2 and text.count("value>-") == 300
    return text


@pytest.mark.parametrize("zone", sorted(GREEN_BUTTON))
def test_green_button_files_in_their_zones_figure_by_figure(
    tmp_path_factory: pytest.TempPathFactory, zone: str
) -> None:
    files = GREEN_BUTTON[zone]
    extra = {EXPORT_NAME: algoma_as_export()} if zone == "America/Toronto" else {}
    settings = home_with(tmp_path_factory, zone, files, extra=extra)
    reads, counts = [], {}
    for path in files:
        hourly, every = green_button_reads(path, usage_point(path))
        reads += hourly
        counts[path.name] = (every, len(hourly), every - len(hourly))
    if extra:
        hourly, every = green_button_reads(ALGOMA, usage_point(ALGOMA), extra[EXPORT_NAME], "ACTIVE_EXPORT")
        reads += hourly
        counts[EXPORT_NAME] = (every, len(hourly), every - len(hourly))
    expected = expected_monthly(reads, zone)
    assert mart(settings) == expected
    assert accounting(settings) == counts
    if extra:  # the same UsagePoint's import and (signed) export: two channels of one meter, equal figures
        meter = usage_point(ALGOMA)
        for period in ("2023-02", "2023-03"):
            imported = expected[(period, meter, "ACTIVE_IMPORT")]
            assert expected[(period, meter, "ACTIVE_EXPORT")] == imported
    if zone == "America/Los_Angeles":  # local March has 743 hours, November 721 (README)
        assert expected[("2011-03", "RetailCustomer/5/UsagePoint/1", "ACTIVE_IMPORT")][0] == 743
        assert expected[("2011-11", "RetailCustomer/5/UsagePoint/1", "ACTIVE_IMPORT")][0] == 721
        assert sum(v[5] for v in expected.values()) == Decimal("4425.305")


def test_united_power_daily_readings_in_denver_are_all_quarantined(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Forward, net (flowDirection 4), reverse (19, negative) and demand (W), all daily: no reading of the
    file fits an interval dataset, and each one is accounted for."""
    path = (
        GB
        / "patrickvorgers-Home-Assistant-Import-Energy-Data"
        / "united-power"
        / "green_button_data_1760853600000.zip"
    )
    settings = Settings(
        home=tmp_path_factory.mktemp("home") / "home",
        memory_limit="1GB",
        threads=2,
        timezone="America/Denver",
    )
    (settings.landing / "readings").mkdir(parents=True)
    shutil.copyfile(path, settings.landing / "readings" / path.name)
    hourly, every = green_button_reads(path, "")
    assert (len(hourly), every) == (0, 7)
    report = run(settings, run_id="e2e-1")
    (f,) = report.ingest.files
    assert (f.source_file, f.rows_in, f.rows_accepted, f.rows_quarantined) == (
        f"readings/{path.name}",
        7,
        0,
        7,
    )
