"""Source files through `ingest`: a recognised file goes through the contract-CSV path, its rows land in
the raw layer with the source file's name and line numbers, its quarantined records name the source
lines, rows in = accepted + quarantined, the same bytes twice change nothing, and a profile that is
invalid leaves its files unread until it is fixed."""

from __future__ import annotations

import shutil
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.ingest.run import IngestReport, ingest
from etl.lake import manifest_files, raw_files
from etl.settings import Settings
from tests.shared_data import external_meter_data

ROOT = Path(__file__).resolve().parents[1]
SHARED = external_meter_data()
NEM = SHARED / "nem" / "aguinane-nem-reader" / "examples"
GB = SHARED / "greenbutton"
CSV = SHARED / "csv" / "patrickvorgers-Home-Assistant-Import-Energy-Data"
AT = datetime(2025, 10, 2, 1, 2, 3)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", memory_limit="1GB", threads=2)


def land(settings: Settings, source: Path, name: str | None = None) -> Path:
    dest = settings.landing / "readings" / (name or source.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest


def run(settings: Settings, run_id: str = "run-1") -> IngestReport:
    report = ingest(settings, run_id, folders=["readings"], ingested_at=AT)
    for f in report.files:
        assert f.rows_in == f.rows_accepted + f.rows_quarantined, f
    return report


def by_file(report: IngestReport) -> dict[str, tuple]:
    return {
        f.source_file: (f.status, f.dataset, f.rows_in, f.rows_accepted, f.rows_quarantined)
        for f in report.files
    }


def query(sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def raw(settings: Settings, dataset: str, cols: str) -> list[tuple]:
    files = [str(p) for p in raw_files(settings, dataset)]
    sql = f"select {cols} from read_parquet(?, hive_partitioning = false) order by _ingest_seq, _line_no"
    return query(sql, [files]) if files else []


def quarantine(settings: Settings, dataset: str) -> list[tuple]:
    path = settings.lake / "quarantine" / dataset
    if not path.exists():
        return []
    sql = (
        "select source_file, line_no, rule, reason from read_parquet(?) order by ingest_seq, line_no, reason"
    )
    return query(sql, [f"{path}/*.parquet"])


def manifest_count(settings: Settings) -> int:
    return len(manifest_files(settings))


def test_nem12_files_land_with_their_own_names_and_line_numbers(settings: Settings) -> None:
    land(settings, NEM / "invalid" / "Example_NEM12_15min_200_30min_400.csv")
    land(settings, NEM / "nem12" / "NEM12#Scenario10#ETSAMDP#NEMMCO.zip")
    report = run(settings)
    vn, zipped = (
        "readings/Example_NEM12_15min_200_30min_400.csv",
        "readings/NEM12#Scenario10#ETSAMDP#NEMMCO.zip",
    )
    # 96 values: 24 actual, 24 N, 48 V that no 400 covers; the zip: 336 values, 3 broken lines.
    assert by_file(report) == {
        vn: ("INGESTED", "interval_reads", 96, 24, 72),
        zipped: ("INGESTED", "interval_reads", 339, 336, 3),
    }
    rows = raw(settings, "interval_reads", "_source_file, meter_id, interval_start, kwh, quality, _line_no")
    first = [r for r in rows if r[0] == vn]
    assert len(first) == 24
    assert first[:2] == [
        (vn, "123-1", datetime(2023, 2, 25, 0, 0), Decimal("10"), "A", 3),
        (vn, "123-1", datetime(2023, 2, 25, 0, 15), Decimal("20"), "A", 3),
    ]
    assert sum(r[3] for r in first) == 3000
    member = zipfile.ZipFile(NEM / "nem12" / "NEM12#Scenario10#ETSAMDP#NEMMCO.zip").read(
        "NEM12#Scenario10#ETSAMDP#NEMMCO.csv"
    )
    lines_300 = {i for i, line in enumerate(member.decode().splitlines(), start=1) if line.startswith("300,")}
    assert {r[5] for r in rows if r[0] == zipped} == lines_300 - {27}
    q = quarantine(settings, "interval_reads")
    assert [r for r in q if r[0] == zipped] == [
        (
            zipped,
            27,
            "nem12",
            "the 300 record holds 0 interval values where the interval length of 30 minutes (200 record on "
            "line 25) needs 48: quarantined whole, never read in part",
        ),
        (zipped, 28, "nem12", "the line is no NEM12 record (record type '11')"),
        (zipped, 29, "nem12", "the line is no NEM12 record (record type '37')"),
    ]
    in_vn = [r for r in q if r[0] == vn]
    assert {(r[1], r[2]) for r in in_vn} == {(3, "no_reading"), (3, "nem12")}
    assert sum(r[2] == "no_reading" for r in in_vn) == 24


def test_the_same_bytes_twice_change_nothing_and_a_later_delivery_comes_later(settings: Settings) -> None:
    land(settings, NEM / "unzipped" / "Example_NEM12_actual_interval.csv", "a_first.csv")
    run(settings)
    land(settings, NEM / "unzipped" / "Example_NEM12_actual_interval.csv", "b_again.csv")
    report = run(settings, "run-2")
    assert by_file(report)["readings/b_again.csv"][0] == "DUPLICATE"
    assert by_file(report)["readings/a_first.csv"][0] == "DUPLICATE"
    # A corrected day in other bytes: ingested after the first, so its rows win the key downstream.
    text = (NEM / "unzipped" / "Example_NEM12_actual_interval.csv").read_text()
    (settings.landing / "readings" / "c_corrected.csv").write_text(text.replace("1.111", "9.999"))
    report = run(settings, "run-3")
    assert by_file(report)["readings/c_corrected.csv"][:2] == ("INGESTED", "interval_reads")
    seqs = raw(settings, "interval_reads", "_source_file, min(_ingest_seq) over (partition by _source_file)")
    order = sorted({(seq, name) for name, seq in seqs})
    assert [name for _, name in order] == ["readings/a_first.csv", "readings/c_corrected.csv"]


def test_nem13_green_button_and_a_rejected_file(settings: Settings) -> None:
    land(settings, NEM / "unzipped" / "Example_NEM13_forward_estimate.csv")
    land(
        settings,
        GB / "cityssm-node-green-button-parser" / "test" / "data" / "intervals_APUC000000_electric.xml",
    )
    daily = GB / "vladistan-greenbutton_objects" / "tests" / "data" / "electricity"
    land(settings, daily / "TestGBDataOneYearDailyBinnedMonthly.xml")
    report = run(settings)
    assert by_file(report) == {
        "readings/Example_NEM13_forward_estimate.csv": ("INGESTED", "register_reads", 4, 2, 2),
        "readings/TestGBDataOneYearDailyBinnedMonthly.xml": ("REJECTED", "interval_reads", 444, 0, 444),
        "readings/intervals_APUC000000_electric.xml": ("INGESTED", "interval_reads", 300, 300, 0),
    }
    assert raw(settings, "register_reads", "meter_id, read_at, register, index_value, _line_no") == [
        ("VDEF005890-11", datetime(2004, 1, 8, 10, 30, 55), "TOTAL", Decimal("888"), 2),
        ("VDEF005890-41", datetime(2004, 1, 8, 10, 30, 55), "TOTAL", Decimal("950"), 4),
    ]
    gb = raw(settings, "interval_reads", "meter_id, interval_start, interval_minutes, kwh, _line_no")
    # Epoch 1678165200 = 2023-03-07 05:00 UTC, 12:00 in the company's zone (UTC+07:00); line 60.
    assert gb[0] == ("User/237422/UsagePoint/1402026", datetime(2023, 3, 7, 12, 0), 60, Decimal("0.32"), 60)
    assert sum(r[3] for r in gb) == Decimal("248.53")


def test_an_invalid_profile_leaves_its_files_unread_until_it_is_fixed(settings: Settings) -> None:
    profiles = settings.home / "profiles"
    profiles.mkdir(parents=True)
    good = (ROOT / "docs" / "profiles" / "e-distribuzione.toml").read_text()
    (profiles / "e-distribuzione.toml").write_text(
        good.replace("interval_minutes = 15", "interval_minutes = 7")
    )
    land(settings, CSV / "enel-distribuzione" / "ExportData_settembre.csv")
    report = run(settings)
    (only,) = report.files
    line = good.splitlines().index("interval_minutes = 15") + 1
    assert (only.status, only.reason) == (
        "SKIPPED",
        f"readings/ExportData_settembre.csv waits unread: profiles/e-distribuzione.toml, line {line}, "
        "key interval_minutes: required: 5, 10, 15, 30 or 60",
    )
    assert manifest_count(settings) == 0
    (profiles / "e-distribuzione.toml").write_text(good)
    report = run(settings, "run-2")
    assert by_file(report) == {
        "readings/ExportData_settembre.csv": ("INGESTED", "interval_reads", 2880, 2880, 0)
    }
    rows = raw(settings, "interval_reads", "meter_id, interval_start, kwh, _line_no")
    assert rows[0] == ("IT001E00000000", datetime(2024, 9, 1, 0, 0), Decimal("0.139"), 2)
    assert sum(r[2] for r in rows) == Decimal("269.281")
    # The same file under a changed profile is read again: its hash covers the profile.
    (profiles / "e-distribuzione.toml").write_text(good.replace("IT001E00000000", "IT001E00000001"))
    report = run(settings, "run-3")
    assert by_file(report)["readings/ExportData_settembre.csv"][0] == "INGESTED"
    report = run(settings, "run-4")
    assert by_file(report)["readings/ExportData_settembre.csv"][0] == "DUPLICATE"


def test_fluvius_profile_quarantines_missing_quarter_hours_with_their_lines(settings: Settings) -> None:
    (settings.home / "profiles").mkdir(parents=True)
    shutil.copyfile(ROOT / "docs" / "profiles" / "fluvius.toml", settings.home / "profiles" / "fluvius.toml")
    name = "Verbruikshistoriek_elektriciteit_123456789123456789_20211012_20240929_kwartiertotalen.csv"
    land(settings, CSV / "fluvius" / name)
    report = run(settings)
    assert by_file(report) == {f"readings/{name}": ("INGESTED", "interval_reads", 3848, 1282, 2566)}
    q = quarantine(settings, "interval_reads")
    # Lines 2 and 3: 12-10-2021 00:00, Afname Nacht and Injectie Nacht, empty Volume, "Geen verbruik".
    assert q[:2] == [
        (
            f"readings/{name}",
            2,
            "no_reading",
            "no reading (quality 'Geen verbruik'): a missing interval, never a zero",
        ),
        (
            f"readings/{name}",
            3,
            "no_reading",
            "no reading (quality 'Geen verbruik'): a missing interval, never a zero",
        ),
    ]
    quality = [r[0] for r in raw(settings, "interval_reads", "quality")]
    assert (quality.count("E"), len(quality)) == (354, 1282)


def test_sources_check_tells_the_reader_and_the_counts_without_ingesting(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from etl.cli import main

    files = [NEM / "invalid" / "Example_NEM12_30min_200_15min_400.csv", CSV / "liander" / "csv_bijlage.csv"]
    status = main(["--home", str(settings.home), "sources", "check", *map(str, files)])
    out = " ".join(capsys.readouterr().out.split())
    assert status == 1  # csv_bijlage.csv: no profile in this home
    assert "Example_NEM12_30min_200_15min_400.csv: NEM12 -> interval_reads" in out
    assert "records 2: accepted 0, quarantined 2 line 3: the 300 record holds 96 interval values" in out
    assert "line 5: the 400 record covers intervals 49-96, outside the 48 intervals of its day" in out
    assert "csv_bijlage.csv: not taken skipped: csv_bijlage.csv: no standard format recognised" in out
    assert not settings.lake.exists()


def test_a_day_delivered_twice_in_one_file_keeps_both_lines_in_source_order(settings: Settings) -> None:
    # No 100 header, two 200..900 blocks: E1 2004-02-01 first as 48 x 1.111 (line 3), then 48 x 3.333
    # (line 9). The key rule keeps the later line: 159.984 kWh, not the sum 213.312.
    land(settings, NEM / "invalid" / "Example_NEM12_powercor.csv")
    report = run(settings)
    assert by_file(report) == {
        "readings/Example_NEM12_powercor.csv": ("INGESTED", "interval_reads", 192, 192, 0)
    }
    rows = raw(settings, "interval_reads", "interval_start, kwh, _line_no, meter_id")
    e1 = [r for r in rows if r[1] in (Decimal("1.111"), Decimal("3.333"))]  # Q1 has 2.222 and 4.444
    assert {r[3] for r in rows} == {"VABD000163-1"}
    assert len(e1) == 96
    later = {}
    for start, kwh, line, _ in sorted(e1, key=lambda r: r[2]):
        later[start] = (kwh, line)
    assert set(later.values()) == {(Decimal("3.333"), 9)}
    assert sum(kwh for kwh, _ in later.values()) == Decimal("159.984")
