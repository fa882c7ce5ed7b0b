"""Hand-written raw rows for tests: as in-memory `raw_<dataset>` tables, or as lake files.

`raw_table` builds what `etl.models.register_raw` would register; `write_raw_file` writes one landing
file's raw Parquet (one file per partition) and then its manifest row, following etl/lake.py's layout.
Rows are dicts of contract columns (absent ones are NULL, or the column's default as ingestion writes
it); lineage columns may be given to override the defaults (`_line_no` = 2, 3, ... in row order;
`_ingest_seq` = the file's seq). An interval reading's UTC instant is its local time - 7 hours
(Asia/Ho_Chi_Minh) unless given.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from etl.contract import DATASETS
from etl.lake import MANIFEST_COLUMNS, file_stem, manifest_dir, raw_dir
from etl.models import raw_columns
from etl.settings import LOCAL_TZ, Settings

INGESTED_AT = datetime(2025, 10, 1, 0, 0, 0)


def _lineage(dataset: str, seq: int, line_no: int, source_file: str, file_hash: str) -> dict[str, Any]:
    return {
        "_source_file": source_file,
        "_line_no": line_no,
        "_file_hash": file_hash,
        "_run_id": f"test-{seq}",
        "_ingested_at": INGESTED_AT,
        "_ingest_seq": seq,
        "_extra": None,
    }


def default_source_file(dataset: str, seq: int) -> str:
    return f"{DATASETS[dataset].folder}/{dataset}_{seq:06d}.csv"


def default_hash(dataset: str, seq: int) -> str:
    return hashlib.sha256(f"{dataset}:{seq}".encode()).hexdigest()


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    dataset: str,
    rows: list[dict[str, Any]],
    seq: int = 1,
    snapshot_date: date | None = None,
    source_file: str | None = None,
) -> None:
    """Insert hand-written rows into `table` (raw schema of `dataset`), lineage filled in."""
    cols = raw_columns(dataset)
    source_file = source_file or default_source_file(dataset, seq)
    file_hash = default_hash(dataset, seq)
    for i, row in enumerate(rows):
        record = _lineage(dataset, seq, i + 2, source_file, file_hash) | _defaults(dataset, row) | row
        if "_snapshot_date" in cols:
            record.setdefault("_snapshot_date", snapshot_date)
        unknown = set(record) - set(cols)
        assert not unknown, f"not raw columns of {dataset}: {unknown}"
        select = ", ".join(f"?::{cols[name]} as {name}" for name in record)
        con.execute(f"insert into {table} by name select {select}", list(record.values()))


def _defaults(dataset: str, row: dict[str, Any]) -> dict[str, Any]:
    """What ingestion writes for the columns a hand-written row leaves out: defaults, the UTC instant."""
    spec = DATASETS[dataset]
    out: dict[str, Any] = {c.name: c.default for c in spec.columns if c.default is not None}
    local = row.get(spec.instant) if spec.instant else None
    if local is not None:
        start = local if isinstance(local, datetime) else datetime.fromisoformat(str(local))
        out[f"{spec.instant}_utc"] = start - timedelta(hours=7)
    return out


def raw_table(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    rows: list[dict[str, Any]],
    seq: int = 1,
    snapshot_date: date | None = None,
) -> None:
    """Create (or add to) table `raw_<dataset>` in `con` with the raw layer's schema."""
    cols = ", ".join(f"{n} {t}" for n, t in raw_columns(dataset).items())
    con.execute(f"create table if not exists raw_{dataset} ({cols})")
    insert_rows(con, f"raw_{dataset}", dataset, rows, seq, snapshot_date)


def memory_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in local time, like etl.duck.connect gives."""
    con = duckdb.connect()
    con.execute(f"set TimeZone = '{LOCAL_TZ}'")
    return con


def write_raw_file(
    settings: Settings,
    dataset: str,
    rows: list[dict[str, Any]],
    seq: int,
    snapshot_date: date | None = None,
    source_file: str | None = None,
) -> list[str]:
    """Write one ingested landing file: raw Parquet per partition, then its manifest row.

    Returns the partitions written (`period=YYYY-MM` or `snapshot=YYYY-MM-DD`).
    """
    spec = DATASETS[dataset]
    source_file = source_file or default_source_file(dataset, seq)
    file_hash = default_hash(dataset, seq)
    con = memory_connection()
    cols = ", ".join(f"{n} {t}" for n, t in raw_columns(dataset).items())
    con.execute(f"create table rows ({cols})")
    insert_rows(con, "rows", dataset, rows, seq, snapshot_date, source_file)
    if spec.is_reference:
        assert snapshot_date is not None, "a reference file needs its snapshot date"
        parts = {f"snapshot={snapshot_date.isoformat()}": "true"}
    else:
        periods = con.execute(
            f"select distinct strftime({spec.partition_by}, '%Y-%m') from rows order by 1"
        ).fetchall()
        parts = {f"period={p}": f"strftime({spec.partition_by}, '%Y-%m') = '{p}'" for (p,) in periods}
    stem = file_stem(seq, file_hash)
    for part, where in parts.items():
        dest = raw_dir(settings, dataset) / part / f"{stem}.parquet"
        dest.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy (select * from rows where {where}) to '{dest.as_posix()}' (format parquet)")
    _write_manifest_row(
        con, settings, dataset, source_file, file_hash, seq, len(rows), list(parts), snapshot_date
    )
    con.close()
    return list(parts)


def _write_manifest_row(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    dataset: str,
    source_file: str,
    file_hash: str,
    seq: int,
    n_rows: int,
    partitions: list[str],
    snapshot_date: date | None,
) -> Path:
    values = {
        "file_hash": file_hash,
        "dataset": dataset,
        "source_file": source_file,
        "size_bytes": 100 * n_rows,
        "status": "INGESTED",
        "reason": None,
        "rows_in": n_rows,
        "rows_accepted": n_rows,
        "rows_quarantined": 0,
        "partitions": partitions,
        "snapshot_date": snapshot_date,
        "run_id": f"test-{seq}",
        "ingested_at": INGESTED_AT,
        "ingest_seq": seq,
    }
    select = ", ".join(f"?::{MANIFEST_COLUMNS[n]} as {n}" for n in values)
    dest = manifest_dir(settings) / f"{file_stem(seq, file_hash)}.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy (select {select}) to '{dest.as_posix()}' (format parquet)", list(values.values()))
    return dest
