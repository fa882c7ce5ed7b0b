"""What every source reader shares: a source file's text members, the conversion result, and writing it
as contract CSV text for the ingest path (docs/sources.md).

A reader turns one source file into a Conversion: contract rows (text columns, in the order the contract
CSV lists them) each with the source line it came from, the records the reader quarantines itself (line,
rule, reason, record), and warnings about the file as a whole. The ingest path then reads the contract
CSV text like any landing file and puts the source line numbers back (etl.sources.ingest).
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from etl.errors import ContractError

QUARANTINE_FIELDS = ("line_no", "rule", "reason", "record")
RECORD_SHOWN = 400  # characters of a source record kept in a quarantine row

INTERVAL_COLUMNS = ("meter_id", "channel", "interval_start", "interval_minutes", "kwh", "quality")
REGISTER_COLUMNS = ("meter_id", "read_at", "register", "index_value", "read_type")
COLUMNS = {"interval_reads": INTERVAL_COLUMNS, "register_reads": REGISTER_COLUMNS}
DEFAULT_CHANNEL = "ACTIVE_IMPORT"  # CONTRACT.md §4: the channel when the column is absent


class SourceError(ContractError):
    """A source file that cannot be read at all: rejected whole (file and reason in the message)."""


@dataclass(frozen=True)
class Member:
    """One text of a source file: the file itself, or one member of a zip (line numbers start at 1)."""

    name: str | None  # the zip member's name; None for the file itself
    text: str

    def where(self, label: str) -> str:
        return f"{label} (member {self.name})" if self.name else label


@dataclass
class Conversion:
    """One source file as contract rows plus what the reader quarantined itself.

    `rows` has the dataset's contract columns as text and `_line` (the source line); `quarantined` has
    line_no, rule, reason and record. Records in = rows + quarantined.
    """

    reader: str  # e.g. "NEM12", "Green Button", "profile fluvius"
    dataset: str  # interval_reads or register_reads
    rows: pa.Table
    quarantined: pa.Table
    warnings: list[str] = field(default_factory=list)

    @property
    def records_in(self) -> int:
        return self.rows.num_rows + self.quarantined.num_rows


def quarantine_table(rows: list[tuple[int, str, str, str]]) -> pa.Table:
    """Quarantine rows (line_no, rule, reason, record) as an Arrow table."""
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    return pa.table(
        {
            "line_no": pa.array(cols[0], pa.int64()),
            "rule": pa.array(cols[1], pa.string()),
            "reason": pa.array(cols[2], pa.string()),
            "record": pa.array([r[:RECORD_SHOWN] for r in cols[3]], pa.string()),
        }
    )


def rows_table(dataset: str, rows: list[tuple]) -> pa.Table:
    """Contract rows (the dataset's columns as text, then the source line) as an Arrow table."""
    names = [*COLUMNS[dataset], "_line"]
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrays = [pa.array(c, pa.string()) for c in cols[:-1]] + [pa.array(cols[-1], pa.int64())]
    return pa.table(dict(zip(names, arrays, strict=True)))


def members(path: Path, label: str, max_bytes: int) -> tuple[bytes, list[Member]]:
    """The bytes of a source file and its text members: a .zip's members in name order, a .gz
    gunzipped, anything else as it is. Raises SourceError when it cannot be read as text."""
    data = path.read_bytes()
    return data, members_of(data, label, max_bytes)


def members_of(data: bytes, label: str, max_bytes: int) -> list[Member]:
    """See members(); `data` are the file's bytes."""
    name = label.lower()
    if name.endswith(".zip"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            infos = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise SourceError(f"{label} unpacks to {total} bytes, above the limit of {max_bytes}")
            return [
                Member(i.filename, _decode(archive.read(i), f"{label} (member {i.filename})")) for i in infos
            ]
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise SourceError(f"{label} is not a readable zip file ({exc})") from None
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"{label} is named .gz but is not valid gzip ({exc})") from None
    return [Member(None, _decode(data, label))]


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            f"{label} is not valid UTF-8: line {line} has the byte 0x{data[exc.start]:02x}"
        ) from None


# the temp table that maps each line of a conversion's contract CSV to its line in the source file
LINE_MAP = "source_lines"


def write_contract_csv(con: duckdb.DuckDBPyConnection, conversion: Conversion, dest: Path) -> None:
    """Write the conversion's rows as contract CSV text at `dest` and keep the map from each CSV line to
    its source line in temp table LINE_MAP (line_no, source_line): the header is line 1."""
    table = conversion.rows
    names = list(COLUMNS[conversion.dataset])
    if (
        "channel" in names
        and table.num_rows
        and pc.all(pc.equal(table.column("channel"), DEFAULT_CHANNEL)).as_py()
    ):
        names.remove("channel")  # the contract's default when the column is absent: less text to check
    try:
        # Arrow's CSV writer is the fast path; it refuses a value that needs quotes (a comma, a quote,
        # a line break), which DuckDB's writer then quotes.
        options = pa_csv.WriteOptions(include_header=True, quoting_style="none")
        pa_csv.write_csv(table.select(names), dest, options)
    except pa.ArrowInvalid:
        con.register("conversion_rows", table)
        try:
            cols = ", ".join(f'"{c}"' for c in names)
            con.execute(
                f"copy (select {cols} from conversion_rows) to '{_sql_path(dest)}' "
                "(format csv, header true, delimiter ',', quote '\"')"
            )
        finally:
            con.unregister("conversion_rows")
    lines = pa.table(
        {
            "line_no": pa.array(range(2, table.num_rows + 2), pa.int64()),
            "source_line": table.column("_line"),
        }
    )
    con.register("conversion_lines", lines)
    try:
        con.execute(f"create or replace temp table {LINE_MAP} as select * from conversion_lines")
    finally:
        con.unregister("conversion_lines")


def _sql_path(path: Path) -> str:
    return path.as_posix().replace("'", "''")
