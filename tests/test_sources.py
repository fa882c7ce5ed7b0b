"""Source readers (etl.sources): NEM12, NEM13, Green Button and the worked profiles, on the public files in
../shared/external-meter-data. Expected figures come from a small independent NEM12 reading below, from
the files' README (written from the files by other tools) or by hand from the lines quoted."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.settings import Settings
from etl.sources import SourceError, convert, greenbutton, nem12, sniff
from etl.sources.core import Conversion, Member, members_of
from etl.sources.profiles import ProfileError, read_profile
from tests.shared_data import external_meter_data

ROOT = Path(__file__).resolve().parents[1]
SHARED = external_meter_data()
NEM = SHARED / "nem" / "aguinane-nem-reader" / "examples"
GB = SHARED / "greenbutton"
CSV = SHARED / "csv" / "patrickvorgers-Home-Assistant-Import-Energy-Data"
PROFILES = ROOT / "docs" / "profiles"

Totals = dict[tuple[str, str, str], tuple[int, int, Decimal]]  # (meter, channel, month) -> A, E, sum


def run(path: Path, reader: str | None = None, profile: str | None = None) -> Conversion:
    data = path.read_bytes()
    con = duckdb.connect()
    try:
        found = read_profile(PROFILES / f"{profile}.toml") if profile else None
        kind = reader or ("profile" if profile else sniff(members_of(data, path.name, 1 << 40)[0].text))
        assert kind is not None, path
        return convert(con, data, path.name, kind, found)
    finally:
        con.close()


def totals(c: Conversion) -> Totals:
    """Per meter, channel and local month of interval_start: intervals actual, estimated, sum of kWh."""
    out: dict[tuple[str, str, str], list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for r in c.rows.to_pylist():
        t = out[(r["meter_id"], r["channel"], r["interval_start"][:7])]
        t[0 if r["quality"] == "A" else 1] += 1
        t[2] += Decimal(r["kwh"])
    return {k: (a, e, s) for k, (a, e, s) in out.items()}


def reasons(c: Conversion) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in c.quarantined.to_pylist():
        out[r["rule"]] += 1
    return dict(out)


# --- an independent NEM12 reading: plain loops, for the well-formed files only --------------------------

UNIT = {"WH": Decimal("0.001"), "KWH": Decimal(1), "VARH": Decimal("0.001"), "KVARH": Decimal(1)}
CHANNEL = {"E": "ACTIVE_IMPORT", "B": "ACTIVE_EXPORT", "Q": "REACTIVE_IMPORT", "K": "REACTIVE_EXPORT"}


def nem12_by_hand(text: str) -> tuple[Totals, dict[tuple[str, str, str], int]]:
    """Totals of a well-formed NEM12 text, and its N (null) intervals per meter, channel and month."""
    days = []  # (meter, channel, factor, date, values, quality, [(from, to, flag)])
    header = None
    for line in text.splitlines():
        f = line.strip().split(",")
        if f[0] == "200":
            header = (f"{f[1]}-{f[4][1]}", CHANNEL.get(f[4][0]), UNIT.get(f[7].upper()), int(f[8]))
        elif f[0] == "300" and header:
            n = 1440 // header[3]
            days.append((*header[:3], f[1], f[2 : 2 + n], f[2 + n][0], []))
        elif f[0] == "400":
            days[-1][6].append((int(f[1]), int(f[2]), f[3][0]))
    out: dict[tuple[str, str, str], list] = defaultdict(lambda: [0, 0, Decimal(0)])
    nulls: dict[tuple[str, str, str], int] = defaultdict(int)
    for meter, channel, factor, date, values, quality, events in days:
        for i, value in enumerate(values, start=1):
            flag = quality if quality != "V" else next(q for a, b, q in events if a <= i <= b)
            if flag == "N":
                nulls[(meter, channel or "?", f"{date[:4]}-{date[4:6]}")] += 1
                continue
            if channel is None or factor is None:
                continue
            t = out[(meter, channel, f"{date[:4]}-{date[4:6]}")]
            t[0 if flag == "A" else 1] += 1
            t[2] += (abs(Decimal(value)) * factor).quantize(Decimal("0.000001"))
    return {k: (a, e, s) for k, (a, e, s) in out.items()}, dict(nulls)


def missing(c: Conversion) -> dict[tuple[str, str, str], int]:
    """No-reading records per meter, channel and month, from the quarantine's record text
    (NMI,suffix,YYYYMMDD,interval i,value,quality)."""
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in c.quarantined.to_pylist():
        if r["rule"] == "no_reading":
            nmi, suffix, day = r["record"].split(",")[:3]
            out[(f"{nmi}-{suffix[1]}", CHANNEL.get(suffix[0], "?"), f"{day[:4]}-{day[4:6]}")] += 1
    return dict(out)


def text_of(path: Path) -> str:
    return "\n".join(m.text for m in members_of(path.read_bytes(), path.name, 1 << 40))


NEM12_FILES = [
    NEM / "unzipped" / "Example_NEM12_multiple_quality.csv",  # A / F14 / S14 through 400 records
    NEM / "unzipped" / "Example_NEM12_multiple_meters.csv",  # two NMIs, Wh and VArh, E1 E2 B1 Q1 K2
    NEM / "unzipped" / "Example_WesternPower.csv",  # E1 B1 Q1 K1, KWH / KVARH
    NEM / "unzipped" / "Example_NEM12_month_solar.csv",  # 5-minute, a month
    NEM / "nem12" / "NEM12#Scenario10#POWERMDP#NEMMCO.zip",  # meter exchange E1 -> B2 E2
    NEM / "nem12" / "NEM12#SCENARIO1005032705#ENERGEXM#NEMMCO.zip",  # 72 N intervals
    NEM / "nem12" / "nem12#S05#INTEGM#NEMMCO.zip",  # 15 <-> 30 minutes
    NEM / "nem12" / "NEM12#NEM1208145Scenario8#GLOBALM#NEMMCO.ZIP",  # 14 x 400, WH
    SHARED / "nem" / "patrickvorgers-Home-Assistant-Import-Energy-Data" / "nem12" / "power-redacted.csv",
]


@pytest.mark.parametrize("path", NEM12_FILES, ids=lambda p: p.name)
def test_nem12_files_match_an_independent_reading_per_meter_channel_and_month(path: Path) -> None:
    c = run(path)
    expected, nulls = nem12_by_hand(text_of(path))
    assert totals(c) == expected  # actual and upstream-estimated intervals, recorded kWh
    assert missing(c) == nulls  # intervals without a reading
    assert reasons(c) == ({"no_reading": sum(nulls.values())} if nulls else {})
    assert c.records_in == c.rows.num_rows + sum(nulls.values())


NEM12_INVALID = sorted(
    p for p in (NEM / "invalid").glob("Example_NEM12_*.csv") if not p.name.endswith("empty.csv")
)


@pytest.mark.parametrize("path", NEM12_FILES + NEM12_INVALID, ids=lambda p: p.name)
def test_nem12_reads_the_same_from_lines_in_many_small_batches(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader scans the lines in Arrow batches of nem12.BATCH_ROWS, in parallel; these files fit in one.
    whole = run(path)
    monkeypatch.setattr(nem12, "BATCH_ROWS", 2)
    batched = run(path)
    assert batched.records_in == whole.records_in > 0
    assert sorted(batched.rows.to_pylist(), key=_by_value) == sorted(whole.rows.to_pylist(), key=_by_value)
    assert batched.quarantined.to_pylist() == whole.quarantined.to_pylist()
    assert batched.warnings == whole.warnings
    if path in NEM12_FILES:
        assert totals(batched) == nem12_by_hand(text_of(path))[0]


def _by_value(row: dict) -> tuple:
    return tuple(str(v) for v in row.values())


def test_the_real_household_file_in_figures_from_its_readme() -> None:
    c = run(
        SHARED / "nem" / "patrickvorgers-Home-Assistant-Import-Energy-Data" / "nem12" / "power-redacted.csv"
    )
    # README: 61056 reads, quality A 60860 and F19 196 (F = final substitute: estimated upstream).
    assert c.rows.num_rows == 61056
    flags = defaultdict(int)
    for q in c.rows.column("quality").to_pylist():
        flags[q] += 1
    assert dict(flags) == {"A": 60860, "E": 196}
    assert {m for m in c.rows.column("meter_id").to_pylist()} == {"(redacted)-1"}
    assert set(c.rows.column("interval_minutes").to_pylist()) == {"5"}  # written "05"
    assert c.warnings == [
        "power-redacted.csv: no 100 header record (line 1 is a 200 record)",
        "power-redacted.csv: no 900 end-of-data record",
    ]


def test_the_invalid_nem12_files_by_hand() -> None:
    inv = NEM / "invalid"
    # 96 values 10, 20, ... under V: 400 1-24 A, 400 25-48 N, 49-96 covered by no 400 record.
    c = run(inv / "Example_NEM12_15min_200_30min_400.csv")
    assert totals(c) == {("123-1", "ACTIVE_IMPORT", "2023-02"): (24, 0, Decimal(10 * sum(range(1, 25))))}
    assert reasons(c) == {"no_reading": 24, "nem12": 48}
    assert {r["line_no"] for r in c.quarantined.to_pylist()} == {3}
    # 48 values where a 15-minute day needs 96, and 96 where a 30-minute one needs 48: quarantined whole.
    for name, values, needed in (("15min_200_30min_300", 48, 96), ("30min_200_15min_300", 96, 48)):
        c = run(inv / f"Example_NEM12_{name}.csv")
        assert c.rows.num_rows == 0
        assert [(r["line_no"], r["reason"][:60]) for r in c.quarantined.to_pylist()] == [
            (3, f"the 300 record holds {values} interval values where the interval length of "[:60])
        ]
        assert f"needs {needed}: quarantined whole" in c.quarantined.column("reason")[0].as_py()
    c = run(inv / "Example_NEM12_30min_200_15min_400.csv")
    assert [(r["line_no"], r["reason"][:40]) for r in c.quarantined.to_pylist()] == [
        (3, "the 300 record holds 96 interval values "),
        (5, "the 400 record covers intervals 49-96, o"),
    ]
    # E1 2004-02-01 is a broken 300 record; E1 2004-02-02 48 x 1.111, Q1 two days of 48 x 2.222.
    c = run(inv / "Example_NEM12_incomplete_interval.csv")
    assert totals(c) == {
        ("VABD000163-1", "ACTIVE_IMPORT", "2004-02"): (48, 0, Decimal("53.328")),
        ("VABD000163-1", "REACTIVE_IMPORT", "2004-02"): (96, 0, Decimal("213.312")),
    }
    assert [r["line_no"] for r in c.quarantined.to_pylist()] == [3]
    c = run(inv / "Example_NEM12_missing_header.csv")
    assert c.rows.num_rows == 96 and c.warnings[0].endswith("no 100 header record (line 2 is a 200 record)")
    # Two deliveries of the same day: both are read, the later line comes later (and wins downstream).
    c = run(inv / "Example_NEM12_powercor.csv")
    e1 = sorted(
        (r["_line"], r["interval_start"], r["kwh"])
        for r in c.rows.to_pylist()
        if r["channel"] == "ACTIVE_IMPORT"
    )
    assert [(line, kwh) for line, _, kwh in e1[::48]] == [(3, "1.111"), (9, "3.333")]
    assert e1[0][1] == e1[48][1] == "2004-02-01T00:00:00"
    assert "2 end-of-data (900) records, on lines 6, 12" in c.warnings[1]
    # Trailing fields after the quality flag are missing; the 48 values are all there.
    assert run(inv / "Example_NEM12_powercor_missing_fields.csv").rows.num_rows == 192
    with pytest.raises(SourceError, match="holds no reading at all"):
        run(inv / "Example_NEM12_empty.csv")
    assert sniff((inv / "Example_empty_file.csv").read_text()) is None


def test_a_short_300_record_is_quarantined_whole_and_its_400_records_stay_with_it() -> None:
    # ETSAMDP's B2 300 record of 2005-01-13 is broken over lines 27-29; POWERMDP's twin is intact.
    broken = run(NEM / "nem12" / "NEM12#Scenario10#ETSAMDP#NEMMCO.zip")
    intact = run(NEM / "nem12" / "NEM12#Scenario10#POWERMDP#NEMMCO.zip")
    assert [(r["line_no"], r["rule"]) for r in broken.quarantined.to_pylist()] == [
        (27, "nem12"),
        (28, "nem12"),
        (29, "nem12"),
    ]
    b2 = {k: v for k, v in totals(broken).items() if k[1] == "ACTIVE_EXPORT"}
    b2_intact = {k: v for k, v in totals(intact).items() if k[1] == "ACTIVE_EXPORT"}
    # README: B2 4071 over 144 reads intact; the broken file loses the 48 reads of 2005-01-13.
    assert sum(v[2] for v in b2_intact.values()) == 4071
    assert sum(v[0] + v[1] for v in b2.values()) == 96
    day12 = [
        r
        for r in broken.rows.to_pylist()
        if r["channel"] == "ACTIVE_EXPORT" and "01-12" in r["interval_start"]
    ]
    assert {r["quality"] for r in day12} == {"A"}  # the 2005-01-13 400 records do not relabel 2005-01-12


def test_an_unsupported_channel_is_quarantined_value_by_value() -> None:
    c = run(NEM / "unzipped" / "Example_NEM12_different_interval_length.csv")
    assert reasons(c) == {"nem12": 144}  # V1 (voltage), 10-minute: 144 values of one day
    assert {r["reason"][:40] for r in c.quarantined.to_pylist()} == {
        "unsupported channel: NMI suffix 'V1' is "
    }
    assert {k[1] for k in totals(c)} == {"ACTIVE_IMPORT"}


def test_nem13_reads_become_register_reads() -> None:
    # 250 records: E direction; previous reads 888 and 950 are actual, current 999 and 10015 are E64.
    c = run(NEM / "unzipped" / "Example_NEM13_forward_estimate.csv")
    assert c.dataset == "register_reads"
    assert [(r["meter_id"], r["read_at"], r["register"], r["index_value"]) for r in c.rows.to_pylist()] == [
        ("VDEF005890-11", "2004-01-08T10:30:55", "TOTAL", "888.000000"),
        ("VDEF005890-41", "2004-01-08T10:30:55", "TOTAL", "950.000000"),
    ]
    assert [r["reason"] for r in c.quarantined.to_pylist()] == [
        "the current read's quality is 'E64': an estimated index is no meter read"
    ] * 2


# --- Green Button -----------------------------------------------------------------------------------


def gb_sum(c: Conversion) -> Decimal:
    return sum((Decimal(k) for k in c.rows.column("kwh").to_pylist()), Decimal(0))


ELECTRICITY = GB / "vladistan-greenbutton_objects" / "tests" / "data" / "electricity"


def test_green_button_hourly_files_in_figures_from_their_readme() -> None:
    c = run(ELECTRICITY / "Coastal_Multi_Family_Jan_1_2011_to_Jan_1_2012_RetailCustomer_5.xml")
    assert (c.rows.num_rows, gb_sum(c), c.quarantined.num_rows) == (8760, Decimal("4425.305"), 0)
    assert set(c.rows.column("meter_id").to_pylist()) == {"RetailCustomer/5/UsagePoint/1"}
    starts = c.rows.column("interval_start").to_pylist()
    assert (starts[0], starts[-1]) == ("2011-01-01T08:00:00Z", "2012-01-01T07:00:00Z")  # 00:00 / 23:00 PST
    c = run(ELECTRICITY / "TestGBDataHourlyNineDaysBinnedDaily.xml")
    assert (c.rows.num_rows, gb_sum(c)) == (216, Decimal("199.563"))
    c = run(GB / "cityssm-node-green-button-parser" / "test" / "data" / "intervals_APUC000000_electric.xml")
    assert (c.rows.num_rows, gb_sum(c)) == (300, Decimal("248.530"))
    assert set(c.rows.column("meter_id").to_pylist()) == {"User/237422/UsagePoint/1402026"}
    # Newest first in the file: 1678165200 = 2023-03-07 05:00 UTC on line 60.
    first = c.rows.slice(0, 1).to_pylist()[0]
    assert (first["interval_start"], first["kwh"], first["_line"]) == ("2023-03-07T05:00:00Z", "0.320000", 60)


def test_green_button_daily_and_unsupported_readings_are_quarantined() -> None:
    c = run(ELECTRICITY / "TestGBDataOneYearDailyBinnedMonthly.xml")
    assert (c.rows.num_rows, c.quarantined.num_rows) == (0, 444)
    up = GB / "patrickvorgers-Home-Assistant-Import-Energy-Data" / "united-power"
    for path in (up / "green_button_data_1761076466385.xml", up / "green_button_data_1760853600000.zip"):
        c = run(path)
        # forward 2 days, net (flowDirection 4) 2, reverse 2, demand (uom 38) 1
        assert (c.rows.num_rows, c.quarantined.num_rows) == (0, 7)
        why = sorted(r["reason"][:30] for r in c.quarantined.to_pylist())
        assert why == ["an interval of 86400 s: interv"] * 4 + ["unsupported reading type (flow"] * 3
    assert run(up / "green_button_data_1760853600000.zip").warnings == [
        "green_button_data_1760853600000.zip: member green_button_data_1761076466385_formatted.html "
        "is not Green Button: not read"
    ]


# --- profiles -----------------------------------------------------------------------------------------


def test_fluvius_english_monthly_offtake_from_its_readme() -> None:
    path = (
        CSV
        / "fluvius"
        / "Consumption_history_electricity_541448820052377134_20231022_20250426_15_minute_totals.csv"
    )
    c = run(path, profile="fluvius")
    t = totals(c)
    meter = "123456879123456789"
    offtake = {k[2]: v[2] for k, v in t.items() if k[:2] == (meter, "ACTIVE_IMPORT")}
    assert offtake == {
        "2023-10": Decimal("210.958"),
        "2023-11": Decimal("594.133"),
        "2023-12": Decimal("657.230"),
    }
    assert reasons(c) == {"no_reading": 2}  # the two registers' first quarter hour, "No consumption"
    # 2023-10-29: 02:00-02:45 twice, kept in file order (the first is the earlier instant).
    night = [
        (r["interval_start"][11:16], r["kwh"])
        for r in c.rows.to_pylist()
        if r["channel"] == "ACTIVE_IMPORT" and r["interval_start"].startswith("2023-10-29T02")
    ]
    assert night == [
        ("02:00", "0.276000"),
        ("02:00", "0.261000"),
        ("02:15", "0.286000"),
        ("02:15", "0.268000"),
        ("02:30", "0.269000"),
        ("02:30", "0.273000"),
        ("02:45", "0.295000"),
        ("02:45", "0.286000"),
    ]


def test_fluvius_dutch_estimates_and_missing_quarter_hours() -> None:
    path = (
        CSV
        / "fluvius"
        / "Verbruikshistoriek_elektriciteit_123456789123456789_20211012_20240929_kwartiertotalen.csv"
    )
    c = run(path, profile="fluvius")
    # README: 3848 rows, 354 Geschat (estimated), 2566 Geen verbruik (empty volume).
    assert (c.records_in, reasons(c)) == (3848, {"no_reading": 2566})
    t = totals(c)
    assert sum(v[1] for v in t.values()) == 354
    assert sum(v[0] for v in t.values()) == 3848 - 2566 - 354


def test_e_distribuzione_wide_day_rows() -> None:
    c = run(CSV / "enel-distribuzione" / "ExportData_settembre.csv", profile="e-distribuzione")
    assert totals(c) == {("IT001E00000000", "ACTIVE_IMPORT", "2024-09"): (2880, 0, Decimal("269.281"))}
    first = c.rows.slice(0, 2).to_pylist()
    assert [(r["interval_start"], r["kwh"], r["_line"]) for r in first] == [
        ("2024-09-01T00:00:00", "0.139000", 2),
        ("2024-09-01T00:15:00", "0.258000", 2),
    ]


def test_liander_register_reads_and_the_gas_meter() -> None:
    c = run(CSV / "liander" / "csv_bijlage.csv", profile="liander")
    rows = c.rows.to_pylist()
    # 206 days of the electricity meter, two import registers each; line 2 is 05-06-2023 15626.2 / 17771.9
    assert len(rows) == 412
    assert [(r["meter_id"], r["read_at"], r["register"], r["index_value"]) for r in rows[:2]] == [
        ("E0045003866355817", "2023-06-05T00:00:00", "OFFPEAK", "15626.200000"),
        ("E0045003866355817", "2023-06-05T00:00:00", "NORMAL", "17771.900000"),
    ]
    why = defaultdict(int)
    for r in c.quarantined.to_pylist():
        why["gas" if "meter_pattern" in r["reason"] else "export"] += 1
    assert dict(why) == {"export": 412, "gas": 824}


def test_an_invalid_profile_names_its_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "fluvius.toml"
    text = (PROFILES / "fluvius.toml").read_text().replace('decimal = ","', 'decimal = ";"')
    bad.write_text(text)
    line = text.splitlines().index('decimal = ";"') + 1
    with pytest.raises(ProfileError, match=rf"profiles/fluvius.toml, line {line}, key decimal: must be"):
        read_profile(bad)
    good = (PROFILES / "fluvius.toml").read_text()
    bad.write_text(good.replace('"Geschat" = "E"', '"Geschat" = "X"'))
    with pytest.raises(ProfileError, match=r"key quality.Geschat: 'X' is not A, E or missing"):
        read_profile(bad)
    bad.write_text('files = ["a.csv"]\ndecimal = ,\n')
    with pytest.raises(ProfileError, match=r"not valid TOML: .*\(at line 2, column 11\)"):
        read_profile(bad)


def test_detection_is_by_content_not_by_name(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert sniff("100,NEM12,200405011135,MDA1,Ret1\n") == "NEM12"
    assert sniff("\n200,VABD000163,E1Q1,1,E1,N1,METSER123,kWh,30,\n") == "NEM12"
    assert sniff("100,NEM13,200401101030,MDA1,Ret1\n") == "NEM13"
    assert sniff("meter_id,interval_start,interval_minutes,kwh\n") is None
    assert sniff("<html><body>http://naesb.org/espi http://www.w3.org/2005/Atom</body></html>") is None
    shutil.copy(NEM / "unzipped" / "Example_NEM12_actual_interval.csv", settings.home / "x.csv")
    assert sniff((settings.home / "x.csv").read_text()) == "NEM12"


def nem_text(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def convert_bytes(data: bytes, name: str) -> Conversion:
    con = duckdb.connect()
    try:
        kind = sniff(members_of(data, name, 1 << 40)[0].text)
        assert kind is not None
        return convert(con, data, name, kind, None)
    finally:
        con.close()


def test_signs_units_and_the_lines_of_zip_members_by_hand() -> None:
    day = ",".join(["-1.5"] * 24 + ["2"] * 24)  # 48 half hours
    a = nem_text(
        "100,NEM12,202501010000,A,B",
        "200,N1,E1B1,1,E1,N1,M1,kWh,30,",
        f"300,20250102,{day},A,,,,",
        "200,N1,E1B1,2,B1,N1,M1,Wh,30,",
        f"300,20250102,{day},A,,,,",
        "200,N1,E1B1,3,Q1,N1,M1,kWh,30,",
        f"300,20250102,{day},A,,,,",
        "900",
    )
    b = nem_text(
        "100,NEM12,202501010000,A,B", "200,N2,E2,1,E2,N1,M2,MWh,30,", f"300,20250103,{day},S14,,,,", "900"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("b.csv", b)  # read second: names are read in order
        z.writestr("a.csv", a)
    c = convert_bytes(buf.getvalue(), "two.zip")
    # E1: 24 negative import values quarantined, 24 x 2 kWh; B1: magnitude, Wh -> kWh;
    # Q1: kWh on a reactive channel quarantined whole; N2-2 (member b.csv, lines 9..): MWh, estimated.
    assert totals(c) == {
        ("N1-1", "ACTIVE_IMPORT", "2025-01"): (24, 0, Decimal(48)),
        ("N1-1", "ACTIVE_EXPORT", "2025-01"): (48, 0, Decimal("0.084")),
        ("N2-2", "ACTIVE_IMPORT", "2025-01"): (0, 24, Decimal(48000)),
    }
    why = defaultdict(int)
    for r in c.quarantined.to_pylist():
        why[(r["line_no"], r["reason"][:30])] += 1
    assert dict(why) == {
        (3, "a negative value on the import"): 24,
        (7, "the unit 'kWh' does not fit th"): 48,
        (12, "a negative value on the import"): 24,
    }
    b1 = sorted(
        (r["interval_start"], r["kwh"]) for r in c.rows.to_pylist() if r["channel"] == "ACTIVE_EXPORT"
    )
    assert b1[0] == ("2025-01-02T00:00:00", "0.001500") and b1[-1] == ("2025-01-02T23:30:00", "0.002000")


def test_unreadable_source_files_are_rejected_whole() -> None:
    with pytest.raises(SourceError, match="is not a readable zip file"):
        convert(duckdb.connect(), b"PK\x03\x04 broken", "x.zip", "NEM12", None)
    doctype = (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "b">]><feed xmlns="http://www.w3.org/2005/Atom"/>'
    )
    assert sniff(doctype.decode()) is None  # no Atom root after the declarations: not taken at all
    with pytest.raises(SourceError, match="must not declare a DOCTYPE or entities"):
        greenbutton.convert([Member(None, doctype.decode())], "x.xml")
    broken = b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:e="http://naesb.org/espi"><entry>'
    with pytest.raises(SourceError, match="is not well-formed XML"):
        convert(duckdb.connect(), broken, "x.xml", "Green Button", None)


def test_a_profile_that_is_a_link_is_not_read(tmp_path: Path) -> None:
    from etl.sources.profiles import load_profiles

    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "fluvius.toml").symlink_to(PROFILES / "fluvius.toml")
    shutil.copyfile(PROFILES / "liander.toml", tmp_path / "profiles" / "liander.toml")
    profiles, problems = load_profiles(Settings(home=tmp_path))
    assert [p.name for p in profiles] == ["liander"]
    assert [str(p) for p in problems] == [
        "profiles/fluvius.toml is a symbolic link or not a regular file: not read "
        "(nothing outside the data home is read)"
    ]
