"""Ingestion (landing -> raw, quarantine, manifest): every CONTRACT.md §1-2 rule broken once, with the
exact message or quarantine row it must give. Fixture CSVs are in tests/fixtures/landing/."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import shutil
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.contract import DATASETS
from etl.errors import LockError
from etl.ingest import files as ingest_files
from etl.ingest import rows as ingest_rows
from etl.ingest import run as ingest_module
from etl.ingest.run import IngestReport, ingest, remove_orphans
from etl.lake import manifest_files, raw_files, tmp_dir
from etl.lock import data_home_lock
from etl.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "landing"
AT = datetime(2025, 10, 2, 1, 2, 3)
INTERVAL_HEADER = "meter_id,interval_start,interval_minutes,kwh,quality\n"
DECIMAL_WORDS = (
    "a decimal number ('.' as decimal point, no thousands separator, at most 12 integer digits and 6 "
    "decimal places)"
)
TIMESTAMP_WORDS = "an ISO 8601 timestamp YYYY-MM-DDTHH:MM[:SS[.ffffff]] with an optional offset"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", memory_limit="1GB", threads=2)


def drop(settings: Settings, rel: str, content: str | bytes) -> Path:
    """Put a file into landing/ (text is written as UTF-8, exactly as given)."""
    path = settings.landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def drop_fixture(settings: Settings, rel: str) -> Path:
    return drop(settings, rel, (FIXTURES / rel).read_bytes())


def run(settings: Settings, run_id: str = "run-1", folders: list[str] | None = None) -> IngestReport:
    report = ingest(settings, run_id, folders=folders, ingested_at=AT)
    for f in report.files:  # rows in = rows accepted + rows quarantined, for every file, always
        assert f.rows_in == f.rows_accepted + f.rows_quarantined, f
    return report


def only(report: IngestReport) -> ingest_module.FileResult:
    assert len(report.files) == 1, report.files
    return report.files[0]


def rows(sql: str, params: list | None = None) -> list[dict]:
    con = duckdb.connect()
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def raw(settings: Settings, dataset: str, *cols: str) -> list[tuple]:
    files = [str(p) for p in raw_files(settings, dataset)]
    if not files:
        return []
    select = ", ".join(cols) if cols else "*"
    sql = f"select {select} from read_parquet(?, hive_partitioning = false) order by _ingest_seq, _line_no"
    return [tuple(r.values()) for r in rows(sql, [files])]


def quarantine(settings: Settings, dataset: str) -> list[tuple]:
    path = settings.lake / "quarantine" / dataset
    if not path.exists():
        return []
    sql = "select line_no, rule, reason, record from read_parquet(?) order by ingest_seq, line_no"
    return [tuple(r.values()) for r in rows(sql, [f"{path}/*.parquet"])]


def manifest(settings: Settings) -> list[dict]:
    files = [str(p) for p in manifest_files(settings)]
    return rows("select * from read_parquet(?) order by ingest_seq", [files]) if files else []


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def interval_file(settings: Settings, body: str, name: str = "interval_reads_20250901.csv") -> Path:
    return drop(settings, f"readings/{name}", INTERVAL_HEADER + body)


# --- files that are ingested ---------------------------------------------------------------------------


def test_a_file_lands_typed_with_lineage_in_the_partitions_of_its_local_months(settings: Settings) -> None:
    path = drop_fixture(settings, "readings/interval_reads_20250901_hes1.csv")
    result = only(run(settings))
    digest = sha(path)
    assert (result.status, result.reason, result.file_hash, result.ingest_seq) == (
        "INGESTED",
        None,
        digest,
        1,
    )
    assert (result.rows_in, result.rows_accepted, result.rows_quarantined) == (4, 4, 0)
    assert result.partitions == ["period=2025-09", "period=2025-10"]
    base = settings.lake / "raw" / "interval_reads"
    assert sorted(p.relative_to(base).as_posix() for p in base.rglob("*.parquet")) == [
        f"period=2025-09/000000001_{digest}.parquet",
        f"period=2025-10/000000001_{digest}.parquet",
    ]
    source = "readings/interval_reads_20250901_hes1.csv"

    def lineage(line: int) -> tuple:
        return (source, line, digest, "run-1", AT, 1, None)

    def imp(month: int, day: int, hour: int, minute: int) -> tuple:
        return ("ACTIVE_IMPORT", datetime(2025, month, day, hour, minute))

    assert raw(settings, "interval_reads") == [
        # no channel column: ACTIVE_IMPORT; the UTC instant is local time - 7 hours
        ("PC03DT0000001", datetime(2025, 9, 1, 0, 0), 30, Decimal("12.5"), "A", *imp(8, 31, 17, 0),
         *lineage(2)),
        ("PC03DT0000001", datetime(2025, 9, 1, 0, 30), 30, Decimal("13.25"), None, *imp(8, 31, 17, 30),
         *lineage(3)),
        ("PC03DT0000002", datetime(2025, 9, 1, 0, 0), 60, Decimal("0"), "E", *imp(8, 31, 17, 0),
         *lineage(4)),
        # 17:30 UTC on 30 September is 00:30 local on 1 October: that month's partition
        ("PC03DT0000002", datetime(2025, 10, 1, 0, 30), 30, Decimal("1.000001"), "A", *imp(9, 30, 17, 30),
         *lineage(5)),
    ]  # fmt: skip
    schema = rows(
        "describe select * from read_parquet(?, hive_partitioning = false)",
        [[str(p) for p in raw_files(settings, "interval_reads")]],
    )
    assert [(r["column_name"], r["column_type"]) for r in schema] == [
        ("meter_id", "VARCHAR"), ("interval_start", "TIMESTAMP"), ("interval_minutes", "BIGINT"),
        ("kwh", "DECIMAL(18,6)"), ("quality", "VARCHAR"), ("channel", "VARCHAR"),
        ("interval_start_utc", "TIMESTAMP"), ("_source_file", "VARCHAR"), ("_line_no", "BIGINT"),
        ("_file_hash", "VARCHAR"), ("_run_id", "VARCHAR"), ("_ingested_at", "TIMESTAMP"),
        ("_ingest_seq", "BIGINT"), ("_extra", "VARCHAR"),
    ]  # fmt: skip
    assert manifest(settings) == [
        {
            "file_hash": digest,
            "dataset": "interval_reads",
            "source_file": source,
            "size_bytes": path.stat().st_size,
            "status": "INGESTED",
            "reason": None,
            "rows_in": 4,
            "rows_accepted": 4,
            "rows_quarantined": 0,
            "partitions": ["period=2025-09", "period=2025-10"],
            "snapshot_date": None,
            "run_id": "run-1",
            "ingested_at": AT,
            "ingest_seq": 1,
        }
    ]
    assert quarantine(settings, "interval_reads") == []


def test_timestamps_with_an_offset_are_converted_to_local_wall_time(settings: Settings) -> None:
    interval_file(
        settings,
        "M1,2025-09-01T00:00:00Z,30,1,\n"
        "M1,2025-09-01T00:00:00+07:00,30,1,\n"
        "M1,2025-09-01T00:00:00-0500,30,1,\n"
        "M1,2025-09-01 00:00:00+07,30,1,\n"
        "M1,2025-09-01T10:15,30,1,\n"
        "M1,2025-09-01 10:15:30.25,30,1,\n"
        # Saigon kept +08:00 in 1970; the contract's local time is +07:00 all year
        "M1,1970-06-01T00:00:00Z,30,1,\n",
    )
    assert only(run(settings)).rows_accepted == 7
    assert raw(settings, "interval_reads", "interval_start") == [
        (datetime(2025, 9, 1, 7, 0),),
        (datetime(2025, 9, 1, 0, 0),),
        (datetime(2025, 9, 1, 12, 0),),
        (datetime(2025, 9, 1, 0, 0),),
        (datetime(2025, 9, 1, 10, 15),),
        (datetime(2025, 9, 1, 10, 15, 30, 250000),),
        (datetime(1970, 6, 1, 7, 0),),
    ]


def test_columns_in_another_order_and_an_absent_optional_column(settings: Settings) -> None:
    drop(
        settings,
        "reference/meters_20250915.csv",
        "installed_on,meter_id,multiplier,reading_mode,role,node_id,customer_id,register_digits,removed_on\n"
        "2018-01-01,M0003,40,INTERVAL,DT,DT0001,,6,\n",
    )
    assert only(run(settings)).status == "INGESTED"
    cols = "meter_id, role, customer_id, node_id, reading_mode, multiplier, max_kw, register_digits"
    assert raw(settings, "meters", cols, "installed_on") == [
        ("M0003", "DT", None, "DT0001", "INTERVAL", Decimal("40"), None, 6, date(2018, 1, 1))
    ]


def test_an_unknown_extra_column_is_kept_in_extra(settings: Settings) -> None:
    drop(
        settings,
        "readings/interval_reads_20250901.csv",
        'meter_id,interval_start,hes note,interval_minutes,kwh,quality,"say ""hi"""\n'
        "M1,2025-09-01T00:00:00,resent,30,1.5,A,x\n"
        "M1,2025-09-01T00:30:00,,30,1.5,A,\n",
    )
    assert only(run(settings)).rows_accepted == 2
    assert raw(settings, "interval_reads", "kwh", "_extra") == [
        (Decimal("1.5"), '{"hes note":"resent","say \\"hi\\"":"x"}'),
        (Decimal("1.5"), '{"hes note":null,"say \\"hi\\"":null}'),
    ]


def test_a_reference_snapshot_takes_its_date_from_the_file_name(settings: Settings) -> None:
    drop_fixture(settings, "reference/meters_20250901.csv")
    result = only(run(settings))
    assert result.partitions == ["snapshot=2025-09-01"]
    assert raw(settings, "meters", "meter_id", "_line_no", "_snapshot_date") == [
        ("M0001", 2, date(2025, 9, 1)),
        ("M0003", 4, date(2025, 9, 1)),
    ]
    assert manifest(settings)[0]["snapshot_date"] == date(2025, 9, 1)
    assert raw_files(settings, "meters")[0].parent.name == "snapshot=2025-09-01"


@pytest.mark.parametrize("name", ["meters_2025091.csv", "meters_20250231.csv", "meters_latest.csv"])
def test_a_reference_file_name_without_a_valid_date_is_rejected(settings: Settings, name: str) -> None:
    drop(settings, f"reference/{name}", (FIXTURES / "reference/meters_20250901.csv").read_bytes())
    result = only(run(settings))
    assert (result.status, result.reason) == (
        "REJECTED",
        f"reference/{name}: a reference file name must be meters_<YYYYMMDD>...csv[.gz] with a valid "
        "snapshot date",
    )
    assert raw_files(settings, "meters") == []


def test_a_bom_is_dropped_and_crlf_line_ends_are_read(settings: Settings) -> None:
    drop(
        settings,
        "readings/interval_reads_20250901.csv",
        b"\xef\xbb\xbf"
        + INTERVAL_HEADER.replace("\n", "\r\n").encode()
        + b"M1,2025-09-01T00:00:00,30,1.5,A\r\n",
    )
    assert only(run(settings)).status == "INGESTED"
    assert raw(settings, "interval_reads", "meter_id", "quality", "_line_no") == [("M1", "A", 2)]


def test_a_bare_carriage_return_is_data_not_a_line_break(settings: Settings) -> None:
    drop(
        settings,
        "reference/network_20250901.csv",
        b'node_id,node_type,parent_id,region_code,name\r\nB1,BOUNDARY,,DH,"Tram\r110kV"\r\nF1,FEEDER,B1,DH,471\r\n',
    )
    assert only(run(settings)).rows_accepted == 2
    assert raw(settings, "network", "node_id", "name", "_line_no") == [
        ("B1", "Tram\r110kV", 2),
        ("F1", "471", 3),
    ]


def test_a_gzip_file_is_ingested(settings: Settings) -> None:
    body = INTERVAL_HEADER + "M1,2025-09-01T00:00:00,30,1.5,A\n"
    path = drop(settings, "readings/interval_reads_20250901_hes2.csv.gz", gzip.compress(body.encode()))
    result = only(run(settings))
    assert (result.status, result.file_hash, result.rows_accepted) == ("INGESTED", sha(path), 1)


def test_any_file_name_works_and_names_nothing_in_the_lake(settings: Settings) -> None:
    name = "interval_reads_2025 09 $(touch x); rm -rf ~ 'q' \"dq\" [1] * ? `id` Đông Hà.csv"
    path = interval_file(settings, "M1,2025-09-01T00:00:00,30,1.5,A\n", name)
    result = only(run(settings))
    assert (result.status, result.source_file) == ("INGESTED", f"readings/{name}")
    assert raw(settings, "interval_reads", "_source_file") == [(f"readings/{name}",)]
    lake_names = {p.name for p in settings.lake.rglob("*") if p.is_file()}
    # beside the raw file, only the record of the home's time zone
    assert lake_names == {f"000000001_{sha(path)}.parquet", "_timezone.json"}
    assert sorted(p.name for p in settings.home.iterdir()) == ["lake", "landing", "state", "tmp"]


def test_blank_lines_are_not_rows_and_do_not_shift_line_numbers(settings: Settings) -> None:
    interval_file(settings, "\nM1,2025-09-01T00:00:00,30,1,A\n\n\nM1,2025-09-01T00:30:00,30,2,A\n\n")
    result = only(run(settings))
    assert (result.rows_in, result.rows_accepted) == (2, 2)
    assert raw(settings, "interval_reads", "kwh", "_line_no") == [(Decimal("1"), 3), (Decimal("2"), 6)]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_hold_over_many_buffers_and_threads(settings: Settings, newline: str) -> None:
    # 12 MB: DuckDB reads it in several buffers on two threads; each meter_id is its own line number
    n = 300_000
    body = "".join(f"L{line},2025-09-01T00:00:00,30,1,A{newline}" for line in range(2, n + 2))
    drop(settings, "readings/interval_reads_20250901.csv", INTERVAL_HEADER.replace("\n", newline) + body)
    result = only(run(settings))
    assert (result.rows_in, result.rows_accepted) == (n, n)
    counts = rows(
        "select count(*) as n, count(*) filter (where meter_id <> 'L' || _line_no) as wrong "
        "from read_parquet(?)",
        [[str(p) for p in raw_files(settings, "interval_reads")]],
    )
    assert counts == [{"n": n, "wrong": 0}]


def test_files_are_ingested_in_order_of_name_with_rising_ingest_seq(settings: Settings) -> None:
    interval_file(settings, "M1,2025-09-01T00:00:00,30,2,A\n", "interval_reads_20250902.csv")
    interval_file(settings, "M1,2025-09-01T00:00:00,30,1,A\n", "interval_reads_20250901.csv")
    drop_fixture(settings, "payments/payments_20250910.csv")
    drop_fixture(settings, "reference/meters_20250901.csv")
    report = run(settings)
    assert [(f.source_file, f.ingest_seq) for f in report.files] == [
        ("reference/meters_20250901.csv", 1),
        ("readings/interval_reads_20250901.csv", 2),
        ("readings/interval_reads_20250902.csv", 3),
        ("payments/payments_20250910.csv", 4),
    ]
    interval_file(settings, "M1,2025-09-01T00:00:00,30,3,A\n", "interval_reads_20250903.csv")
    later = run(settings, "run-2")
    assert [(f.status, f.ingest_seq) for f in later.files if f.status != "DUPLICATE"] == [("INGESTED", 5)]
    assert raw(settings, "interval_reads", "kwh", "_ingest_seq", "_run_id") == [
        (Decimal("1"), 2, "run-1"),
        (Decimal("2"), 3, "run-1"),
        (Decimal("3"), 5, "run-2"),
    ]


def test_folders_limit_the_run_to_some_source_families(settings: Settings) -> None:
    drop_fixture(settings, "readings/interval_reads_20250901_hes1.csv")
    drop_fixture(settings, "payments/payments_20250910.csv")
    assert [f.dataset for f in run(settings, folders=["payments"]).files] == ["payments"]
    assert [f.status for f in run(settings, folders=["readings", "payments"]).files] == [
        "INGESTED",
        "DUPLICATE",
    ]
    with pytest.raises(ValueError, match="unknown landing folder"):
        ingest(settings, "run-3", folders=["reading"])


# --- the same bytes again ------------------------------------------------------------------------------


def test_the_same_bytes_under_a_new_name_change_nothing(settings: Settings) -> None:
    first = drop_fixture(settings, "readings/interval_reads_20250901_hes1.csv")
    run(settings)
    before = sorted(p.relative_to(settings.lake) for p in settings.lake.rglob("*.parquet"))
    shutil.copy(first, settings.landing / "readings" / "interval_reads_20250901_hes1_again.csv")
    report = run(settings, "run-2")
    assert [(f.source_file, f.status, f.reason, f.ingest_seq) for f in report.files] == [
        (
            "readings/interval_reads_20250901_hes1.csv",
            "DUPLICATE",
            "readings/interval_reads_20250901_hes1.csv was ingested before (ingest_seq 1): nothing to do",
            None,
        ),
        (
            "readings/interval_reads_20250901_hes1_again.csv",
            "DUPLICATE",
            "readings/interval_reads_20250901_hes1_again.csv has the same bytes as "
            "readings/interval_reads_20250901_hes1.csv, which was ingested before (ingest_seq 1): "
            "nothing to do",
            None,
        ),
    ]
    assert not report.changed
    assert sorted(p.relative_to(settings.lake) for p in settings.lake.rglob("*.parquet")) == before


def test_files_seen_before_are_not_read_again(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_fixture(settings, "readings/interval_reads_20250901_hes1.csv")
    drop(settings, "readings/interval_reads_20250901_hes2.csv.gz", gzip.compress(INTERVAL_HEADER.encode()))
    run(settings)

    def no_read(*args: object) -> None:
        raise AssertionError("a landing file was read again")

    monkeypatch.setattr(ingest_module, "read_landing_file", no_read)
    assert [f.status for f in run(settings, "run-2").files] == ["DUPLICATE", "DUPLICATE"]


def test_a_file_whose_ctime_changed_is_only_hashed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = drop_fixture(settings, "readings/interval_reads_20250901_hes1.csv")
    packed = drop(
        settings, "readings/interval_reads_20250901_hes2.csv.gz", gzip.compress(INTERVAL_HEADER.encode())
    )
    run(settings)
    for path in (plain, packed):
        os.link(
            path, settings.home / path.name
        )  # a hard link changes the landing file's ctime, not its bytes
    reads: list[Path | None] = []
    real_read = ingest_module.read_landing_file

    def hash_only(
        entry: ingest_files.LandingEntry, tmp: Path | None, max_bytes: int, chunk: int
    ) -> ingest_files.FileRead:
        reads.append(tmp)
        return real_read(entry, tmp, max_bytes, chunk)

    monkeypatch.setattr(ingest_module, "read_landing_file", hash_only)
    assert [f.status for f in run(settings, "run-2").files] == ["DUPLICATE", "DUPLICATE"]
    assert reads == [None, None]
    assert [f.status for f in run(settings, "run-3").files] == ["DUPLICATE", "DUPLICATE"]
    assert reads == [None, None]  # the hashes are cached again under the new ctime


def test_a_file_rewritten_under_its_name_is_hashed_again(settings: Settings) -> None:
    path = interval_file(settings, "M1,2025-09-01T00:00:00,30,1,A\n")
    run(settings)
    before = path.stat()
    interval_file(settings, "M1,2025-09-01T00:00:00,30,2,A\n")  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old mtime: only ctime tells
    result = only(run(settings, "run-2"))
    assert (result.status, result.ingest_seq, result.file_hash) == ("INGESTED", 2, sha(path))


def test_a_rejected_file_dropped_again_is_a_duplicate(settings: Settings) -> None:
    drop(settings, "readings/interval_reads_20250901.csv", "")
    assert only(run(settings)).status == "REJECTED"
    shutil.rmtree(settings.state)  # without the hash cache too
    assert only(run(settings, "run-2")).status == "DUPLICATE"
    assert len(manifest(settings)) == 1


# --- files rejected whole ------------------------------------------------------------------------------


def assert_rejected(settings: Settings, reason: str) -> None:
    result = only(run(settings))
    assert (result.status, result.reason) == ("REJECTED", reason)
    assert (result.rows_in, result.rows_accepted, result.rows_quarantined, result.partitions) == (0, 0, 0, [])
    [row] = manifest(settings)
    assert (row["status"], row["reason"], row["ingest_seq"], row["file_hash"]) == (
        "REJECTED",
        reason,
        1,
        result.file_hash,
    )
    assert not (settings.lake / "raw").exists()
    assert not (settings.lake / "quarantine").exists()


def test_a_missing_required_column_rejects_the_file(settings: Settings) -> None:
    drop(
        settings,
        "readings/interval_reads_20250901.csv",
        "meter_id,interval_start,kwh\nM1,2025-09-01T00:00,1\n",
    )
    assert_rejected(
        settings,
        "readings/interval_reads_20250901.csv: the header (line 1) lacks the required column(s) "
        "interval_minutes, quality",
    )


def test_a_repeated_column_name_rejects_the_file(settings: Settings) -> None:
    drop(
        settings,
        "readings/interval_reads_20250901.csv",
        "meter_id,interval_start,interval_minutes,kwh,quality,kwh\nM1,2025-09-01T00:00,30,1,A,2\n",
    )
    assert_rejected(
        settings,
        "readings/interval_reads_20250901.csv: the column name 'kwh' repeats in the header on line 1 "
        "(columns 4 and 6)",
    )


def test_another_delimiter_rejects_the_file(settings: Settings) -> None:
    drop(
        settings, "readings/interval_reads_20250901.csv", INTERVAL_HEADER.replace(",", ";") + "M1;x;30;1;A\n"
    )
    assert_rejected(
        settings,
        "readings/interval_reads_20250901.csv: the header (line 1) lacks the required column(s) meter_id, "
        "interval_start, interval_minutes, kwh, quality; the header is one column "
        "'meter_id;interval_start;interval_minutes;kwh;quality': is the file comma separated?",
    )


def test_a_quote_that_never_closes_rejects_the_file(settings: Settings) -> None:
    interval_file(
        settings, 'M1,2025-09-01T00:00,30,1,A\nM1,"2025-09-01T00:30,30,1,A\nM1,2025-09-01T01:00,30,1,A\n'
    )
    assert_rejected(
        settings,
        "readings/interval_reads_20250901.csv cannot be parsed as CSV: the quote opened on line 3 "
        "never closes",
    )


def test_a_file_that_is_not_utf8_is_rejected_naming_the_line(settings: Settings) -> None:
    text = (
        "customer_id,customer_name,address,phone,customer_class,tariff_code,region_code,dt_id,connected_on,"
        "disconnected_on\n"
        "PC1,An,x,,RESIDENTIAL,RES,DH,DT1,2020-01-01,\n"
        "PC2,Hà,x,,RESIDENTIAL,RES,DH,DT1,2020-01-01,\n"
    )
    drop(settings, "reference/customers_20250901.csv", text.encode("cp1258"))
    assert_rejected(
        settings,
        "reference/customers_20250901.csv is not valid UTF-8: line 3 has the byte 0xe0, which starts no "
        "UTF-8 character (save the file as UTF-8)",
    )


def test_a_truncated_gzip_file_is_rejected(settings: Settings) -> None:
    data = gzip.compress((INTERVAL_HEADER + "M1,2025-09-01T00:00:00,30,1.5,A\n" * 50).encode())
    drop(settings, "readings/interval_reads_20250901.csv.gz", data[: len(data) // 2])
    assert_rejected(
        settings,
        "readings/interval_reads_20250901.csv.gz is truncated: its gzip stream ends before its end mark",
    )


def test_a_csv_gz_that_is_not_gzip_is_rejected(settings: Settings) -> None:
    drop(settings, "readings/interval_reads_20250901.csv.gz", INTERVAL_HEADER)
    assert_rejected(
        settings, "readings/interval_reads_20250901.csv.gz is named .csv.gz but is not gzip-compressed"
    )


def test_a_csv_that_is_gzip_is_rejected(settings: Settings) -> None:
    drop(settings, "readings/interval_reads_20250901.csv", gzip.compress(INTERVAL_HEADER.encode()))
    assert_rejected(
        settings, "readings/interval_reads_20250901.csv is gzip-compressed but named .csv (name it .csv.gz)"
    )


def test_an_empty_file_is_rejected(settings: Settings) -> None:
    drop(settings, "readings/interval_reads_20250901.csv", "\n\n")
    assert_rejected(settings, "readings/interval_reads_20250901.csv is empty: no header and no accepted row")


def test_a_header_without_rows_is_rejected_as_having_no_accepted_row(settings: Settings) -> None:
    drop(settings, "readings/interval_reads_20250901.csv", INTERVAL_HEADER)
    assert_rejected(
        settings,
        "readings/interval_reads_20250901.csv: no accepted row: the file has a header but no data row",
    )


def test_a_file_above_the_size_limit_is_rejected(settings: Settings) -> None:
    small = Settings(home=settings.home, memory_limit="1GB", threads=2, max_file_bytes=100)
    path = interval_file(small, "M1,2025-09-01T00:00:00,30,1.5,A\n" * 3)
    result = only(run(small))
    assert (result.status, result.reason, result.file_hash) == (
        "REJECTED",
        f"readings/interval_reads_20250901.csv is {path.stat().st_size} bytes, above the limit of 100 bytes "
        "(METERFLOW_MAX_FILE_MB)",
        sha(path),
    )


def test_a_gzip_file_that_inflates_above_the_size_limit_is_rejected(settings: Settings) -> None:
    small = Settings(home=settings.home, memory_limit="1GB", threads=2, max_file_bytes=1000)
    drop(small, "readings/interval_reads_20250901.csv.gz", gzip.compress(b"x" * 5000))
    result = only(run(small))
    assert result.reason == (
        "readings/interval_reads_20250901.csv.gz holds more than 1000 bytes of CSV, the limit "
        "(METERFLOW_MAX_FILE_MB)"
    )


def test_a_line_longer_than_the_limit_rejects_the_file(settings: Settings) -> None:
    interval_file(settings, "M1,2025-09-01T00:00:00,30,1.5,A\nM1," + "x" * (3 * 1024 * 1024) + ",30,1,A\n")
    assert_rejected(
        settings,
        "readings/interval_reads_20250901.csv cannot be parsed as CSV: line 3 is longer than 2097152 bytes",
    )


def test_a_file_whose_every_row_is_quarantined_is_rejected_and_keeps_its_quarantine(
    settings: Settings,
) -> None:
    interval_file(settings, "M1,2025-09-01,30,1,A\nM1,2025-09-01T00:00:00,45,1,A\n")
    result = only(run(settings))
    reason = (
        "readings/interval_reads_20250901.csv: no accepted row: all 2 rows are quarantined (the first, "
        f"line 2: column interval_start has '2025-09-01', which is not {TIMESTAMP_WORDS})"
    )
    assert (result.status, result.reason, result.rows_in, result.rows_quarantined) == (
        "REJECTED",
        reason,
        2,
        2,
    )
    assert result.partitions == []
    assert [
        (r["status"], r["rows_in"], r["rows_accepted"], r["rows_quarantined"]) for r in manifest(settings)
    ] == [("REJECTED", 2, 0, 2)]
    assert raw_files(settings, "interval_reads") == []
    assert [q[:2] for q in quarantine(settings, "interval_reads")] == [(2, "type"), (3, "range")]


# --- rows quarantined ----------------------------------------------------------------------------------


def test_a_bad_enum_is_quarantined_with_the_row_as_delivered(settings: Settings) -> None:
    drop_fixture(settings, "payments/payments_20250910.csv")
    result = only(run(settings))
    assert (result.rows_in, result.rows_accepted, result.rows_quarantined) == (3, 2, 1)
    assert quarantine(settings, "payments") == [
        (
            3,
            "enum",
            "column channel has 'CASH', which is not one of CASH_COUNTER, CASH_COLLECTOR, BANK_TRANSFER, "
            "AUTO_DEBIT, E_WALLET, BANKING_APP, CARD, OTHER_CASHLESS",
            "P0002,B0002,PC03DH0001235,2025-09-10T08:15:00+07:00,50000,CASH",
        )
    ]
    assert raw(settings, "payments", "payment_id", "paid_at") == [
        ("P0001", datetime(2025, 9, 10, 8, 15)),
        ("P0003", datetime(2025, 9, 30, 23, 59, 59, 500000)),
    ]
    q = rows(f"select * from read_parquet('{settings.lake}/quarantine/payments/*.parquet')")[0]
    assert {
        k: q[k] for k in ("dataset", "source_file", "file_hash", "run_id", "ingested_at", "ingest_seq")
    } == {
        "dataset": "payments",
        "source_file": "payments/payments_20250910.csv",
        "file_hash": result.file_hash,
        "run_id": "run-1",
        "ingested_at": AT,
        "ingest_seq": 1,
    }


def test_timestamps_that_are_not_iso_8601_are_quarantined(settings: Settings) -> None:
    interval_file(
        settings,
        "M1,2025-09-01,30,1,A\n"
        "M1,01/09/2025 00:00,30,1,A\n"
        "M1,2025-9-1 00:00:00,30,1,A\n"
        "M1,2025-09-01T00:00:00 Asia/Bangkok,30,1,A\n"
        "M1,2025-09-31T00:00:00,30,1,A\n"
        "M1,2025-09-01T 0:20:30,30,1,A\n"
        "M1,2025-09-01T10:20:3 ,30,1,A\n"
        "M1, 025-09-01T10:20:30,30,1,A\n"
        "M1,1899-12-31T23:00:00,30,1,A\n"
        "M1,2025-09-01T00:00:00,30,1,A\n",
    )
    assert only(run(settings)).rows_accepted == 1
    bad = "column interval_start has '{}', which is not " + TIMESTAMP_WORDS
    assert [q[:3] for q in quarantine(settings, "interval_reads")] == [
        (2, "type", bad.format("2025-09-01")),
        (3, "type", bad.format("01/09/2025 00:00")),
        (4, "type", bad.format("2025-9-1 00:00:00")),
        (5, "type", bad.format("2025-09-01T00:00:00 Asia/Bangkok")),
        (6, "type", bad.format("2025-09-31T00:00:00")),
        (7, "type", bad.format("2025-09-01T 0:20:30")),
        (8, "type", bad.format("2025-09-01T10:20:3 ")),
        (9, "type", bad.format(" 025-09-01T10:20:30")),
        (10, "range", "column interval_start has '1899-12-31T23:00:00', which is before 1900 or after 2099"),
    ]


def test_decimals_must_be_plain_with_at_most_six_places(settings: Settings) -> None:
    values = [
        "NaN",
        "inf",
        "-Infinity",
        "1.1234567",
        "1,5",
        "1e3",
        "1_000",
        " 1",
        "1234567890123",
        "1.123456",
    ]
    interval_file(settings, "".join(f'M1,2025-09-01T00:00:00,30,"{v}",A\n' for v in values))
    assert only(run(settings)).rows_accepted == 1
    assert raw(settings, "interval_reads", "kwh") == [(Decimal("1.123456"),)]
    assert [q[:3] for q in quarantine(settings, "interval_reads")] == [
        (i + 2, "type", f"column kwh has '{v}', which is not {DECIMAL_WORDS}")
        for i, v in enumerate(values[:-1])
    ]


def _near_misses(valid: list[str], seed: int) -> list[str]:
    """The valid texts with one or two characters replaced, dropped or added, a few thousand of them."""
    rng = random.Random(seed)
    alphabet = "0123456789-+ .eE_x:T/"
    out = set(valid)
    for _ in range(4000):
        text = list(rng.choice(valid))
        for _ in range(rng.randint(1, 2)):
            at = rng.randrange(len(text) + 1)
            edit = rng.choice(("replace", "drop", "add"))
            if edit == "add" or not text:
                text.insert(at, rng.choice(alphabet))
            elif at < len(text):
                text[at] = rng.choice(alphabet) if edit == "replace" else ""
        out.add("".join(text))
    return sorted(out)


@pytest.mark.parametrize(
    ("column", "pattern", "cast", "valid"),
    [
        (
            "interval_minutes",
            ingest_rows.INT_RE,
            "BIGINT",
            ["0", "5", "-5", "+5", "007", "123456789012345678", "-123456789012345678", "1234567890123456789"],
        ),
        (
            "period_start",
            ingest_rows.DATE_RE,
            "DATE",
            [
                "2025-01-31",
                "0999-01-01",
                "0001-01-01",
                "0000-01-01",
                "9999-12-31",
                "2025-02-29",
                "2024-02-29",
            ],
        ),
    ],
)
def test_the_cast_shortcut_types_as_the_regular_expression_does(
    column: str, pattern: str, cast: str, valid: list[str]
) -> None:
    # An integer or a date whose cast reads back as the same text is typed without the regular expression.
    dataset = DATASETS["interval_reads" if column == "interval_minutes" else "bill_lines"]
    typed = ingest_rows._typed_first(dataset.column(column), "v")
    plain = f"case when regexp_full_match(v, {ingest_rows.lit(pattern)}) then try_cast(v as {cast}) end"
    rng = random.Random(7)
    many = [str(rng.randrange(-(10**18), 10**18) // 10 ** rng.randrange(18)) for _ in range(2000)]
    if cast == "DATE":
        many = [str(date(1900, 1, 1) + timedelta(days=37 * k)) for k in range(2000)]
    values = sorted({*many, *_near_misses(valid, seed=len(column))})
    con = duckdb.connect()
    con.execute("create table t as select unnest(?::VARCHAR[]) as v", [values])
    differ = con.execute(
        f"select v, {typed}, {plain} from t where ({typed}) is distinct from ({plain})"
    ).fetchall()
    typed_ok = con.execute(f"select count(*) from t where ({plain}) is not null").fetchone()
    assert differ == []
    assert len(values) > 3000 and typed_ok is not None and 1500 < typed_ok[0] < len(values) - 1000


def test_dates_before_1900_are_quarantined(settings: Settings) -> None:
    drop_fixture(settings, "reference/customers_20250901.csv")
    run(settings)
    assert quarantine(settings, "customers")[0][:3] == (
        5,
        "range",
        "column connected_on has '1899-12-31', which is before 1900-01-01 or after 2099-12-31",
    )


def test_negative_kwh_is_quarantined_on_a_regular_line_and_accepted_on_an_adjustment(
    settings: Settings,
) -> None:
    drop_fixture(settings, "billing/bill_lines_20250906_CIS-2025-09-R1_v1.csv")
    result = only(run(settings))
    assert (result.rows_accepted, result.rows_quarantined, result.partitions) == (2, 1, ["period=2025-09"])
    assert raw(settings, "bill_lines", "bill_id", "line_no", "bill_type", "kwh", "vat_vnd", "_line_no") == [
        ("B0001", 1, "REGULAR", Decimal("50"), Decimal("7936"), 2),
        ("B0002", 1, "ADJUSTMENT", Decimal("-20"), Decimal("-3174.4"), 4),
    ]
    assert quarantine(settings, "bill_lines") == [
        (
            3,
            "negative_kwh",
            "kwh is '-12.5' and bill_type is 'REGULAR', which breaks the rule kwh < 0 only on ADJUSTMENT "
            "lines",
            "CIS-2025-09-R1,1,2025-09,B0001,2,PC03DH0001234,REGULAR,2025-08-06,2025-09-05,RES,BLOCK_2,-12.5,"
            "2050,-25625,-2050,2025-09-06",
        )
    ]


def test_extra_rules_of_the_meters_are_checked(settings: Settings) -> None:
    drop_fixture(settings, "reference/meters_20250901.csv")
    run(settings)
    assert [q[:3] for q in quarantine(settings, "meters")] == [
        (
            3,
            "required",
            "role is 'CUSTOMER' and customer_id is empty, which breaks the rule customer_id required when "
            "role = CUSTOMER",
        ),
        (5, "range", "multiplier is '0', which breaks the rule multiplier > 0"),
    ]


def test_a_row_breaking_several_rules_is_one_quarantine_row_with_every_reason(settings: Settings) -> None:
    interval_file(settings, ",2025-09-01T00:00:00,45,-1,X\n")
    run(settings)
    assert quarantine(settings, "interval_reads") == [
        (
            2,
            "required",
            "column meter_id is empty but required; column quality has 'X', which is not one of A, E; "
            "interval_minutes is '45', which breaks the rule interval_minutes in (5, 10, 15, 30, 60); "
            "kwh is '-1', which breaks the rule kwh >= 0",
            ",2025-09-01T00:00:00,45,-1,X",
        )
    ]


def test_a_wrong_field_count_is_quarantined_with_its_line(settings: Settings) -> None:
    interval_file(
        settings, "M1,2025-09-01T00:00:00,30,1,A\nM1,2025-09-01T00:30:00,30,1\nM1,x,30,1,A,extra,more\n"
    )
    run(settings)
    assert quarantine(settings, "interval_reads") == [
        (3, "field_count", "the line has 4 fields, the header has 5", "M1,2025-09-01T00:30:00,30,1"),
        (4, "field_count", "the line has 7 fields, the header has 5", "M1,x,30,1,A,extra,more"),
    ]


def test_line_numbers_are_physical_after_a_quoted_line_break(settings: Settings) -> None:
    drop_fixture(settings, "reference/customers_20250901.csv")
    result = only(run(settings))
    assert (result.rows_in, result.rows_accepted, result.rows_quarantined) == (5, 3, 2)
    assert raw(settings, "customers", "customer_id", "customer_name", "address", "_line_no") == [
        ("PC03DH0001234", "Nguyễn Văn An", "12 Lê Lợi, Đông Hà", 2),
        ("PC03DH0001235", 'Trần Thị "Bé" Hoa', "Thôn 3\nXã Cam Hiếu", 3),
        ("PC03DH0001238", "Hồ Thị Lan", "9 Quang Trung", 7),
    ]
    assert [q[:3] for q in quarantine(settings, "customers")] == [
        (5, "range", "column connected_on has '1899-12-31', which is before 1900-01-01 or after 2099-12-31"),
        (6, "field_count", "the line has 11 fields, the header has 10"),
    ]


def test_quoted_fields_keep_their_commas_quotes_and_control_bytes(settings: Settings) -> None:
    header = (
        "customer_id,customer_name,address,phone,customer_class,tariff_code,region_code,dt_id,connected_on,"
        "disconnected_on\n"
    )
    tail = ',"RESIDENTIAL","SH","DH","DH-1",2020-01-01,\n'
    drop(
        settings,
        "reference/customers_20250901.csv",
        header
        + '"C1","Lê, Văn An","Thôn 1, xã Cam Hiếu, Quảng Trị",""'
        + tail
        + '"C2","Trần Thị ""Bé""","a,b,,c","0912"'
        + tail
        + '"C3","x\x1fy, z",,0913'
        + tail  # 0x1f in the file: another spare byte splits the fields
        + '"C4","after the quote"x,"a",""'
        + tail
        + '"C5",",",",,",","'
        + tail,
    )
    result = only(run(settings))
    assert result.reason is None
    assert (result.rows_in, result.rows_accepted, result.rows_quarantined) == (5, 4, 1)
    assert raw(settings, "customers", "customer_id", "customer_name", "address", "phone", "dt_id") == [
        ("C1", "Lê, Văn An", "Thôn 1, xã Cam Hiếu, Quảng Trị", None, "DH-1"),
        ("C2", 'Trần Thị "Bé"', "a,b,,c", "0912", "DH-1"),
        ("C3", "x\x1fy, z", None, "0913", "DH-1"),
        ("C5", ",", ",,", ",", "DH-1"),
    ]
    assert [q[:2] for q in quarantine(settings, "customers")] == [(5, "csv_syntax")]


def test_timestamps_with_an_offset_beyond_the_usual_shapes(settings: Settings) -> None:
    interval_file(
        settings,
        "M1,2025-09-01T23:30:00+05:30,30,1,\n"
        "M1,2025-09-01T24:00:00Z,30,1,\n"
        "M1,2025-09-01T00:00:00.5-01:00,30,1,\n"
        "M1,2025-09-01T00:00:0 Z,30,1,\n"
        "M1,2025-09-01 00:00:00Z,30,1,\n",
    )
    assert only(run(settings)).rows_accepted == 4
    # 23:30 at +05:30 is 18:00 UTC, 01:00 local; 24:00Z is 00:00 UTC the next day; 00:00:00.5 at -01:00
    # is 01:00:00.5 UTC
    assert raw(settings, "interval_reads", "interval_start", "interval_start_utc") == [
        (datetime(2025, 9, 2, 1, 0), datetime(2025, 9, 1, 18, 0)),
        (datetime(2025, 9, 2, 7, 0), datetime(2025, 9, 2, 0, 0)),
        (datetime(2025, 9, 1, 8, 0, 0, 500000), datetime(2025, 9, 1, 1, 0, 0, 500000)),
        (datetime(2025, 9, 1, 7, 0), datetime(2025, 9, 1, 0, 0)),
    ]
    assert [q[:2] for q in quarantine(settings, "interval_reads")] == [(5, "type")]


def test_a_stray_quote_in_a_field_is_quarantined(settings: Settings) -> None:
    interval_file(settings, 'M1,2025-09-01T00:00:00,30,1,A\nM"1",2025-09-01T00:30:00,30,1,A\n')
    run(settings)
    assert quarantine(settings, "interval_reads") == [
        (
            3,
            "csv_syntax",
            "the line is not valid CSV: a quote inside an unquoted field, or text after a closing quote",
            'M"1",2025-09-01T00:30:00,30,1,A',
        )
    ]


# --- entries skipped -----------------------------------------------------------------------------------


def test_links_folders_fifos_and_strange_names_are_skipped(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text(INTERVAL_HEADER + "M1,2025-09-01T00:00:00,30,1,A\n")
    readings = settings.landing / "readings"
    (readings / "interval_reads_sub").mkdir(parents=True)
    (readings / "interval_reads_sub" / "interval_reads_20250901.csv").write_bytes(outside.read_bytes())
    (readings / "interval_reads_link.csv").symlink_to(outside)
    os.mkfifo(readings / "interval_reads_fifo.csv")
    drop(settings, "readings/interval_reads_20250901.txt", "x")
    drop(settings, "readings/notes.csv", "x")
    report = run(settings)
    assert [(f.source_file, f.dataset, f.status, f.reason) for f in report.files] == [
        (
            "readings/interval_reads_20250901.txt",
            None,
            "SKIPPED",
            "readings/interval_reads_20250901.txt: a landing file name must end .csv or .csv.gz",
        ),
        (
            "readings/interval_reads_fifo.csv",
            None,
            "SKIPPED",
            "readings/interval_reads_fifo.csv is not a regular file (a fifo, socket or device)",
        ),
        (
            "readings/interval_reads_link.csv",
            None,
            "SKIPPED",
            "readings/interval_reads_link.csv is a symbolic link: links are never followed",
        ),
        (
            "readings/interval_reads_sub",
            None,
            "SKIPPED",
            "readings/interval_reads_sub is a folder: only files directly inside landing/readings/ are read",
        ),
        (
            "readings/notes.csv",
            None,
            "SKIPPED",
            "readings/notes.csv matches no dataset of readings (expected interval_reads_*, register_reads_*)",
        ),
    ]
    assert manifest(settings) == [] and not report.changed


def test_a_linked_landing_folder_is_not_read(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "payments_20250910.csv").write_bytes(
        (FIXTURES / "payments/payments_20250910.csv").read_bytes()
    )
    settings.landing.mkdir(parents=True)
    (settings.landing / "payments").symlink_to(outside)
    assert [(f.status, f.reason) for f in run(settings).files] == [
        ("SKIPPED", "landing/payments is a symbolic link: nothing under it is read")
    ]


# --- crashes, the lock and the report ------------------------------------------------------------------


def test_files_of_a_run_that_stopped_before_its_manifest_row_are_ignored_then_removed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_fixture(settings, "payments/payments_20250910.csv")

    def crash(*args: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(ingest_module._Run, "_write_manifest", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        run(settings)
    orphans = sorted(p.relative_to(settings.lake).parts[0] for p in settings.lake.rglob("*.parquet"))
    assert orphans == ["quarantine", "raw"]
    assert raw_files(settings, "payments") == [] and manifest(settings) == []
    old_tmp = tmp_dir(settings) / "left-by-a-crash.parquet"
    old_tmp.write_bytes(b"x")
    os.utime(old_tmp, (0, 0))
    fresh_tmp = tmp_dir(settings) / "being-written-by-another-stage.parquet"
    fresh_tmp.write_bytes(b"x")

    monkeypatch.undo()
    result = only(run(settings, "run-2"))
    assert (result.status, result.ingest_seq, result.rows_accepted) == ("INGESTED", 1, 2)
    assert raw(settings, "payments", "payment_id", "_run_id") == [("P0001", "run-2"), ("P0003", "run-2")]
    assert sorted(p.relative_to(settings.lake).parts[0] for p in settings.lake.rglob("*.parquet")) == [
        "_tmp",
        "manifest",
        "quarantine",
        "raw",
    ]
    assert not old_tmp.exists() and fresh_tmp.exists()


def test_a_file_that_changes_while_it_is_read_is_left_for_the_next_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval_file(settings, "M1,2025-09-01T00:00:00,30,1,A\n")
    monkeypatch.setattr(ingest_files.TextCopy, "unchanged", lambda self: False)
    result = only(run(settings))
    assert (result.status, result.reason) == (
        "SKIPPED",
        "readings/interval_reads_20250901.csv could not be read (readings/interval_reads_20250901.csv "
        "changed while it was read); the next run tries again",
    )
    assert manifest(settings) == [] and not (settings.lake / "raw").exists()
    monkeypatch.undo()
    assert only(run(settings, "run-2")).status == "INGESTED"


def test_remove_orphans_keeps_committed_files(settings: Settings) -> None:
    drop_fixture(settings, "payments/payments_20250910.csv")
    run(settings)
    orphan = raw_files(settings, "payments")[0].with_name("000000009_" + "0" * 64 + ".parquet")
    shutil.copy(raw_files(settings, "payments")[0], orphan)
    assert remove_orphans(settings) == [orphan]
    assert len(raw_files(settings, "payments")) == 1


def test_ingestion_waits_for_the_lock_then_fails_clearly(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "INGEST_LOCK_WAIT", 0.2)
    with data_home_lock(settings, "ingest"):
        with pytest.raises(
            LockError, match=r"another meterflow run holds the ingest lock .* pid \d+; gave up"
        ):
            run(settings)


def test_the_report_sums_files_and_rows_per_dataset(settings: Settings) -> None:
    drop_fixture(settings, "reference/customers_20250901.csv")
    drop_fixture(settings, "payments/payments_20250910.csv")
    drop(settings, "payments/payments_20250911.csv", "payment_id\n")
    drop(settings, "payments/readme.txt", "")
    report = run(settings)
    assert report.changed and report.run_id == "run-1"
    assert report.by_dataset() == [
        {
            "dataset": "customers",
            "files": 1,
            "ingested": 1,
            "duplicate": 0,
            "rejected": 0,
            "skipped": 0,
            "rows_in": 5,
            "rows_accepted": 3,
            "rows_quarantined": 2,
        },
        {
            "dataset": "payments",
            "files": 2,
            "ingested": 1,
            "duplicate": 0,
            "rejected": 1,
            "skipped": 0,
            "rows_in": 3,
            "rows_accepted": 2,
            "rows_quarantined": 1,
        },
        {
            "dataset": None,
            "files": 1,
            "ingested": 0,
            "duplicate": 0,
            "rejected": 0,
            "skipped": 1,
            "rows_in": 0,
            "rows_accepted": 0,
            "rows_quarantined": 0,
        },
    ]


def test_every_extra_rule_binds_to_its_datasets_typed_columns() -> None:
    con = duckdb.connect()
    for dataset in DATASETS.values():
        typed = ", ".join(f"null::{c.lake_type} as {c.name}" for c in dataset.columns)
        for rule in dataset.extra_rules:
            assert set(rule.shows) <= set(dataset.column_names), rule
            # a row whose values are all missing breaks no rule: those are reported by their own checks
            assert con.execute(f"select {rule.breaks} from (select {typed})").fetchone()[0] is not True, rule


def test_ingested_at_is_stored_as_utc(settings: Settings) -> None:
    drop_fixture(settings, "payments/payments_20250910.csv")
    at = datetime(2025, 10, 2, 8, 2, 3, tzinfo=timezone(timedelta(hours=7)))
    ingest(settings, "run-1", ingested_at=at)
    assert {r[0] for r in raw(settings, "payments", "_ingested_at")} == {
        at.astimezone(UTC).replace(tzinfo=None)
    }
