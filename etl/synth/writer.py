"""Writes landing files the way upstream systems drop them, and remembers what it wrote.

Files are written under `<home>/tmp/generate/` and renamed into `landing/` so that a file is either
absent or complete. Every file is recorded with the month close it belongs to, its data rows and the
rows (or the whole file) that ingestion is expected to quarantine (reject).
"""

from __future__ import annotations

import decimal
import gzip
import io
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from etl.contract import FOLDERS, dataset_for_file

INGESTED = "INGESTED"
REJECTED = "REJECTED"


@dataclass
class FileRecord:
    path: str  # relative to landing/
    dataset: str
    close: str  # the month close ('YYYY-MM') the file is dropped for
    rows: int  # data rows, malformed ones included
    quarantined: int  # rows ingestion must quarantine (0 for a rejected file: nothing is read)
    status: str  # what ingestion must do with the file: INGESTED or REJECTED
    size: int
    reason: str | None = None


@dataclass
class Extra:
    """A raw line inserted before data row `position` (e.g. a malformed row)."""

    position: int
    text: str


def line_numbers(rows: np.ndarray, extras: list[Extra]) -> np.ndarray:
    """Physical line numbers (header = 1) of table rows after the extra lines are inserted."""
    positions = np.sort(np.array([e.position for e in extras], dtype=np.int64))
    return 2 + rows + np.searchsorted(positions, rows, side="right")


def extra_line_numbers(extras: list[Extra]) -> list[int]:
    """Physical line numbers of the extra lines, in the order given."""
    order = sorted(range(len(extras)), key=lambda i: (extras[i].position, i))
    out = [0] * len(extras)
    for k, i in enumerate(order):
        out[i] = 2 + extras[i].position + k
    return out


def scaled(values: np.ndarray | pa.Array, places: int) -> pa.Array:
    """Integers counted in 10^-places as exact decimals with that many places (e.g. 1234, 3 -> 1.234)."""
    unit = pa.scalar(decimal.Decimal(1).scaleb(-places), pa.decimal128(places, places))
    return pc.multiply(pa.array(values, pa.int64()).cast(pa.decimal128(19, 0)), unit)


def milli(values: np.ndarray) -> pa.Array:
    """Integers in thousandths as exact decimals ('1.234')."""
    return scaled(values, 3)


def centi_or_whole(values: np.ndarray, whole: np.ndarray) -> pa.Array:
    """Hundredths as '12.34', or as '12' where `whole` is true (callers pass whole numbers there)."""
    values = np.asarray(values, dtype=np.int64)
    out = pa.array(np.where(whole, values // 100, 0), pa.int64()).cast(pa.string())
    if whole.all():
        return out
    return pc.replace_with_mask(out, pa.array(~whole), scaled(values[~whole], 2).cast(pa.string()))


def days_text(days: np.ndarray) -> pa.Array:
    """Days since 1970 as dates (written 'YYYY-MM-DD')."""
    return pa.array(np.asarray(days, dtype=np.int64), pa.int64()).cast(pa.int32()).cast(pa.date32())


def seconds_text(seconds: np.ndarray, sep: str = "T", suffix: str = "") -> pa.Array:
    """Local wall-clock seconds as ISO 8601 text; the unique values are formatted once, then taken."""
    uniq, inverse = np.unique(np.asarray(seconds, dtype=np.int64), return_inverse=True)
    return instants_text(uniq, sep, suffix).take(pa.array(inverse.ravel()))


def instants_text(seconds: np.ndarray, sep: str = "T", suffix: str = "") -> pa.Array:
    """Each of a few instants as ISO 8601 text ('2025-09-01T00:30:00', then `sep` and `suffix`)."""
    text = np.datetime_as_string(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"), unit="s")
    if sep != "T" or suffix:
        text = np.char.add(np.char.replace(text, "T", sep), suffix)
    return pa.array(text.tolist(), pa.string())


def row_text(values: list[str]) -> str:
    """One CSV line from field texts (quoted where needed)."""
    out = []
    for v in values:
        if any(ch in v for ch in ',"\n'):
            v = '"' + v.replace('"', '""') + '"'
        out.append(v)
    return ",".join(out)


@dataclass
class Landing:
    """Writes landing files; tables are rendered, compressed and written on a background thread."""

    home: Path
    records: list[FileRecord] = field(default_factory=list)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1), repr=False)
    _pending: list[Future] = field(default_factory=list, repr=False)

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def scratch(self) -> Path:
        return self.home / "tmp" / "generate"

    @staticmethod
    def csv_bytes(table: pa.Table, quoting: str = "none", extras: list[Extra] | None = None) -> bytes:
        """Header line plus rows (strings quoted only when quoting='needed'), with extra lines spliced in."""
        header = (",".join(table.column_names) + "\n").encode()
        buf = io.BytesIO()
        if table.num_rows:
            options = pcsv.WriteOptions(include_header=False, quoting_style=quoting)
            pcsv.write_csv(table, buf, write_options=options)
        body = buf.getvalue()
        if not extras:
            return header + body
        ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10)
        starts = np.concatenate([[0], ends + 1])
        pieces, cursor = [header], 0
        for extra in sorted(extras, key=lambda e: e.position):
            cut = int(starts[min(extra.position, len(starts) - 1)])
            pieces.extend([body[cursor:cut], extra.text.encode() + b"\n"])
            cursor = cut
        pieces.append(body[cursor:])
        return b"".join(pieces)

    def put(
        self,
        path: str,
        close: str,
        table: pa.Table,
        *,
        quoting: str = "none",
        extras: list[Extra] | None = None,
        prefix: bytes = b"",
        quarantined: int = 0,
    ) -> FileRecord:
        """Queue a table as a CSV file (gzipped when the name ends .csv.gz) and record it."""
        record = self._record(path, close, table.num_rows + len(extras or []), quarantined, INGESTED, None)
        while len(self._pending) >= 2:  # keep at most two files in memory
            self._pending.pop(0).result()

        def job() -> None:
            data = prefix + self.csv_bytes(table, quoting, extras)
            if path.endswith(".gz"):
                data = gzip.compress(data, compresslevel=1, mtime=0)
            self._place(path, data)
            record.size = len(data)

        self._pending.append(self._pool.submit(job))
        return record

    def put_raw(self, path: str, close: str, data: bytes, *, rows: int, reason: str) -> FileRecord:
        """Write bytes as they are: a file ingestion must reject whole."""
        record = self._record(path, close, rows, 0, REJECTED, reason)
        self._place(path, data)
        record.size = len(data)
        return record

    def flush(self) -> None:
        """Wait until every queued file is in place. Raises whatever a background write raised."""
        while self._pending:
            self._pending.pop(0).result()

    def close(self) -> None:
        self.flush()
        self._pool.shutdown()

    def _record(
        self, path: str, close: str, rows: int, quarantined: int, status: str, reason: str | None
    ) -> FileRecord:
        folder, name = path.split("/")
        spec = dataset_for_file(folder, name)
        if spec is None:
            raise ValueError(f"{path} matches no dataset of {folder}")
        record = FileRecord(path, spec.name, close, rows, quarantined, status, 0, reason)
        self.records.append(record)
        return record

    def _place(self, path: str, data: bytes) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        tmp = self.scratch / path.replace("/", "__")
        tmp.write_bytes(data)
        dest = self.landing / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)

    def drops(self) -> dict[str, list[str]]:
        """Landing files per month close: reference data first, then readings, bills and payments."""
        rank = {folder: i for i, folder in enumerate(FOLDERS)}
        out: dict[str, list[str]] = {}
        for r in sorted(self.records, key=lambda r: (r.close, rank[r.path.split("/")[0]])):
            out.setdefault(r.close, []).append(r.path)
        return out
