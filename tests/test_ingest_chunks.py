"""Landing files read in chunks: every record read once, with its own physical line number, wherever the
chunk boundaries fall (CONTRACT.md §2: rows in = rows accepted + rows quarantined, line numbers are the
file's).

Each file carries its line numbers in its key column (`K<line>`), so the raw layer and the quarantine
can be checked row by row against the file itself. The read chunk is set small, so that files of a few
kilobytes straddle it once and several times; one case uses the real chunk size on a 9 MB file.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from etl.contract import DATASETS
from etl.ingest.run import ingest
from etl.lake import raw_files
from etl.settings import Settings

CHUNK = 4096
SIZES = [n * CHUNK + d for n in (1, 3) for d in (-1, 0, 1)]

# A valid row per dataset; the key column's value is replaced by K<line number>.
ROWS: dict[str, tuple[str, dict[str, str]]] = {
    "customers": ("customer_id", {
        "customer_name": "Nguyễn Văn An", "address": "12 Lê Lợi", "phone": "0901234567",
        "customer_class": "RESIDENTIAL", "tariff_code": "SH", "region_code": "PC03DH", "dt_id": "DT1",
        "connected_on": "2020-01-01", "disconnected_on": "",
    }),
    "meters": ("meter_id", {
        "role": "CUSTOMER", "customer_id": "C1", "node_id": "", "reading_mode": "INTERVAL",
        "multiplier": "1", "max_kw": "", "register_digits": "6", "installed_on": "2020-01-01",
        "removed_on": "",
    }),
    "network": ("node_id", {"node_type": "DT", "parent_id": "F1", "region_code": "PC03DH", "name": "Trạm 1"}),
    "tariffs": ("tariff_code", {
        "customer_class": "RESIDENTIAL", "component": "BLOCK_6", "block_from_kwh": "401",
        "block_to_kwh": "", "price_vnd_per_kwh": "3350", "valid_from": "2025-05-10", "valid_to": "",
    }),
    "plans": ("region_code", {"year": "2025", "kpi": "KWH_SOLD", "target": "1630000000"}),
    "interval_reads": ("meter_id", {
        "interval_start": "2025-09-01T00:15:00", "interval_minutes": "15", "kwh": "0.25", "quality": "A",
        "channel": "ACTIVE_EXPORT",
    }),
    "register_reads": ("meter_id", {
        "read_at": "2025-09-15T08:00:00", "register": "TOTAL", "index_value": "12345.6",
        "read_type": "REGULAR",
    }),
    "bill_lines": ("bill_id", {
        "export_id": "CIS-2025-09-R1", "export_version": "1", "billing_period": "2025-09", "line_no": "1",
        "customer_id": "C1", "bill_type": "REGULAR", "period_start": "2025-08-15", "period_end": "2025-09-14",
        "tariff_code": "SH", "component": "BLOCK_2", "kwh": "123.456", "unit_price_vnd": "1893",
        "amount_vnd": "233702.208", "vat_vnd": "18696.18", "issued_on": "2025-09-20",
    }),
    "payments": ("payment_id", {
        "bill_id": "B1", "customer_id": "C1", "paid_at": "2025-09-21T10:30:00+07:00", "amount_vnd": "252398",
        "channel": "E_WALLET",
    }),
}  # fmt: skip


@dataclass
class Planted:
    """What a generated file holds: key -> line number, for accepted and for quarantined records."""

    accepted: dict[str, int]
    quarantined: dict[str, int]


def make_file(
    dataset: str, size: int, newline: str, spanning: bool, chunk: int = CHUNK
) -> tuple[bytes, Planted]:
    """A CSV of exactly `size` bytes for `dataset`, with an extra `note` column.

    Every 29th record has too few fields (quarantined). With `spanning`, a quoted note holds a line
    break that falls exactly on each chunk boundary it can reach.
    """
    key_col, values = ROWS[dataset]
    columns = list(DATASETS[dataset].column_names)
    nl = newline.encode()
    out = bytearray((",".join([*columns, "note"]) + newline).encode())
    planted = Planted({}, {})
    line = 2

    def record(key: str, note: str) -> bytes:
        fields = [key if c == key_col else values[c] for c in columns]
        return (",".join([*fields, note]) + newline).encode()

    while True:
        key = f"K{line}"
        if line % 29 == 0:
            row = f"{key},short{newline}".encode()
            planted.quarantined[key] = line
        else:
            row = record(key, "n")
            head = record(key, '"')[: -len(nl)]
            pad = (len(out) // chunk + 1) * chunk - len(out) - len(head)
            if spanning and 0 <= pad < len(row):  # the next record would cross the boundary
                row = head + b"x" * pad + nl + b'y"' + nl
            planted.accepted[key] = line
        if len(out) + len(row) + 200 > size:
            break
        out += row
        line += row.count(nl)
    last = record(key, "")
    out += last[: -len(nl)] + b"z" * (size - len(out) - len(last)) + nl
    planted.quarantined.pop(key, None)
    planted.accepted[key] = line
    assert len(out) == size
    return bytes(out), planted


def landing_name(dataset: str, tag: str) -> str:
    folder = DATASETS[dataset].folder
    if DATASETS[dataset].is_reference:
        return f"{folder}/{dataset}_20250901_{tag}.csv"
    return f"{folder}/{dataset}_{tag}.csv"


def read_back(settings: Settings, dataset: str, key_col: str) -> dict[str, list[tuple[str, int]]]:
    """source file -> [(key, line)] of the raw rows, and of the quarantined rows under 'quarantine:'."""
    con = duckdb.connect()
    out: dict[str, list[tuple[str, int]]] = {}
    files = [str(p) for p in raw_files(settings, dataset)]
    if files:
        sql = f"select _source_file, {key_col}, _line_no from read_parquet(?, hive_partitioning = false)"
        for source, key, line in con.execute(sql, [files]).fetchall():
            out.setdefault(source, []).append((key, line))
    quarantine = settings.lake / "quarantine" / dataset
    if quarantine.exists():
        sql = "select source_file, split_part(record, ',', 1), line_no from read_parquet(?)"
        for source, key, line in con.execute(sql, [f"{quarantine}/*.parquet"]).fetchall():
            out.setdefault("quarantine:" + source, []).append((key, line))
    return out


def drop_and_check(settings: Settings, files: dict[str, tuple[bytes, Planted]], gz: bool) -> None:
    """Land the files, ingest them, and compare the lake with what each file holds, record by record."""
    for name, (data, _) in files.items():
        path = settings.landing / (name + (".gz" if gz else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    report = ingest(settings, "run-1")
    results = {f.source_file: f for f in report.files}
    assert len(results) == len(files)
    by_dataset: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for name, (_, planted) in files.items():
        source = name + (".gz" if gz else "")
        result = results[source]
        assert result.status == "INGESTED", result
        expected_in = len(planted.accepted) + len(planted.quarantined)
        assert (result.rows_in, result.rows_accepted, result.rows_quarantined) == (
            expected_in,
            len(planted.accepted),
            len(planted.quarantined),
        ), source
        dataset = result.dataset
        assert dataset is not None
        if dataset not in by_dataset:
            by_dataset[dataset] = read_back(settings, dataset, ROWS[dataset][0])
        lake = by_dataset[dataset]
        # every key present once, with the line number it has in the file; the header never a row
        assert sorted(lake.get(source, [])) == sorted(planted.accepted.items()), source
        assert sorted(lake.get("quarantine:" + source, [])) == sorted(planted.quarantined.items()), source


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("spanning", [False, True], ids=["lines", "quoted-line-breaks"])
def test_every_record_is_read_once_with_its_line_number_across_read_chunks(
    tmp_path: Path, gz: bool, newline: str, spanning: bool
) -> None:
    settings = Settings(home=tmp_path / "home", memory_limit="1GB", threads=2, read_chunk_bytes=CHUNK)
    files = {
        landing_name(dataset, f"{size:06d}"): make_file(dataset, size, newline, spanning)
        for dataset in ROWS
        for size in SIZES
    }
    drop_and_check(settings, files, gz)


def test_the_generated_files_straddle_the_chunk_as_intended() -> None:
    data, planted = make_file("bill_lines", 3 * CHUNK + 1, "\r\n", True)
    assert len(data) == 3 * CHUNK + 1
    for boundary in (CHUNK, 2 * CHUNK):
        assert data[boundary : boundary + 2] == b"\r\n"  # the line break inside a quoted note
        assert data[:boundary].count(b'"') % 2 == 1
    assert len(planted.accepted) + len(planted.quarantined) == data.count(b"\r\n") - 1 - 2


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_nine_megabyte_file_at_the_real_chunk_size(tmp_path: Path, gz: bool) -> None:
    settings = Settings(home=tmp_path / "home", memory_limit="1GB", threads=2)
    size = 9 * 1000 * 1000
    files = {
        landing_name(dataset, "9mb"): make_file(dataset, size, "\n", False, settings.read_chunk_bytes)
        for dataset in ("bill_lines", "customers")
    }
    assert size > settings.read_chunk_bytes
    drop_and_check(settings, files, gz)
