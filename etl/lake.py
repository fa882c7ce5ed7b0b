"""The lake's layout under the data home, and atomic writes into it.

    lake/raw/<dataset>/period=YYYY-MM/<seq>_<sha256>.parquet      readings, bill lines, payments
    lake/raw/<dataset>/snapshot=YYYY-MM-DD/<seq>_<sha256>.parquet  reference snapshots
    lake/quarantine/<dataset>/<seq>_<sha256>.parquet               rows that broke a row rule
    lake/manifest/<seq>_<sha256>.parquet                           one row per landing file read
    lake/validated/<table>/period=YYYY-MM/data.parquet             VEE output, rebuilt per period
    lake/aggregates/<model>/period=YYYY-MM/data.parquet            monthly mart parts, rebuilt per period

A landing file's Parquet becomes visible by rename, and the file counts as ingested only once its
manifest row exists: readers take raw files whose `<seq>_<sha256>` is in the manifest, so a crash
between the two leaves nothing half-ingested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.settings import Settings

if TYPE_CHECKING:
    import duckdb

MANIFEST_COLUMNS: dict[str, str] = {
    "file_hash": "VARCHAR",
    "dataset": "VARCHAR",
    "source_file": "VARCHAR",
    "size_bytes": "BIGINT",
    "status": "VARCHAR",  # INGESTED or REJECTED
    "reason": "VARCHAR",  # why a file was rejected, NULL when ingested
    "rows_in": "BIGINT",
    "rows_accepted": "BIGINT",
    "rows_quarantined": "BIGINT",
    "partitions": "VARCHAR[]",  # period=YYYY-MM or snapshot=YYYY-MM-DD written by this file
    "snapshot_date": "DATE",  # reference files: the date in the file name
    "run_id": "VARCHAR",
    "ingested_at": "TIMESTAMP",
    "ingest_seq": "BIGINT",
}

QUARANTINE_COLUMNS: dict[str, str] = {
    "dataset": "VARCHAR",
    "source_file": "VARCHAR",
    "line_no": "BIGINT",
    "file_hash": "VARCHAR",
    "rule": "VARCHAR",  # short rule name, e.g. enum, type, required, field_count
    "reason": "VARCHAR",  # the sentence a person reads: column, value and rule
    "record": "VARCHAR",  # the row as delivered
    "run_id": "VARCHAR",
    "ingested_at": "TIMESTAMP",
    "ingest_seq": "BIGINT",
}

# One row per check of one stage in one run: lake/quality/<run_id>/<stage>.parquet -> mart_data_quality.
QUALITY_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "stage": "VARCHAR",  # ingest, raw, validated, marts
    "suite": "VARCHAR",  # e.g. raw.interval_reads
    "check_name": "VARCHAR",  # e.g. expect_column_values_to_not_be_null(meter_id)
    "description": "VARCHAR",  # what was checked, in words
    "severity": "VARCHAR",  # critical or warning
    "rows_checked": "BIGINT",
    "rows_failed": "BIGINT",
    "passed": "BOOLEAN",
    "checked_at": "TIMESTAMP",  # UTC
}


def layer_dir(settings: Settings, layer: str) -> Path:
    """lake/<layer>: raw, quarantine, manifest, validated, aggregates or quality."""
    return settings.lake / layer


def quality_dir(settings: Settings) -> Path:
    return layer_dir(settings, "quality")


def raw_dir(settings: Settings, dataset: str) -> Path:
    return layer_dir(settings, "raw") / dataset


def quarantine_dir(settings: Settings, dataset: str) -> Path:
    return layer_dir(settings, "quarantine") / dataset


def manifest_dir(settings: Settings) -> Path:
    return layer_dir(settings, "manifest")


def validated_dir(settings: Settings, table: str) -> Path:
    return layer_dir(settings, "validated") / table


def aggregates_dir(settings: Settings, model: str) -> Path:
    return layer_dir(settings, "aggregates") / model


def layer_watermark(settings: Settings, layer: str) -> Path:
    """lake/<layer>/_watermark.json: how far a derived layer (validated, aggregates) has got."""
    return layer_dir(settings, layer) / "_watermark.json"


PARTITION_PREFIX = "period="


def partition_name(period: str) -> str:
    """The folder of a monthly partition: `period=YYYY-MM`."""
    return f"{PARTITION_PREFIX}{period}"


def partition_periods(names: Iterable[str]) -> set[str]:
    """The `YYYY-MM` of each `period=YYYY-MM` among partition names (snapshot ones are skipped)."""
    return {n.removeprefix(PARTITION_PREFIX) for n in names if n.startswith(PARTITION_PREFIX)}


def periods_under(base: Path) -> set[str]:
    """The `YYYY-MM` of every `period=YYYY-MM` folder under `base` (none when it does not exist)."""
    return partition_periods(p.name for p in base.iterdir()) if base.exists() else set()


def partition_file(base: Path, period: str) -> Path:
    """`base/period=YYYY-MM/data.parquet`: one month of a table rebuilt per period."""
    return base / partition_name(period) / "data.parquet"


def partition_files(base: Path) -> list[Path]:
    """Every month's file of a table rebuilt per period (validated, aggregates), in period order."""
    return sorted(base.glob(f"{PARTITION_PREFIX}*/data.parquet"))


def tmp_dir(settings: Settings) -> Path:
    """Scratch space for files about to be renamed into the lake (same file system)."""
    return settings.lake / "_tmp"


def file_stem(ingest_seq: int, file_hash: str) -> str:
    return f"{ingest_seq:09d}_{file_hash}"


def raw_file(settings: Settings, dataset: str, partition: str, stem: str) -> Path:
    """lake/raw/<dataset>/<partition>/<seq>_<sha256>.parquet: one landing file's rows in one partition."""
    return raw_dir(settings, dataset) / partition / f"{stem}.parquet"


def manifest_raw_files(
    settings: Settings, rows: Iterable[tuple[str, Iterable[str] | None, int, str]]
) -> dict[str, list[Path]]:
    """The raw files that exist of manifest rows (dataset, partitions, ingest_seq, file_hash), by dataset,
    in the rows' order."""
    files: dict[str, list[Path]] = {}
    for dataset, partitions, seq, file_hash in rows:
        for partition in partitions or []:
            path = raw_file(settings, dataset, partition, file_stem(seq, file_hash))
            if path.exists():
                files.setdefault(dataset, []).append(path)
    return files


# Scratch file names start `<host>~<pid>~`, so that a later run can tell the leftovers of a killed
# process (gone from this host) from the files of one still writing.
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"


def scratch_name(suffix: str = "", label: str = "") -> str:
    """A unique scratch file name that names its writer: `<host>~<pid>~<label><uuid><suffix>`."""
    return f"{_HOST}~{os.getpid()}~{label}{uuid.uuid4().hex}{suffix}"


def writer_gone(path: Path) -> bool:
    """True when `path` has a scratch name written by a process of this host that no longer runs."""
    host, _, rest = path.name.partition("~")
    pid, _, _ = rest.partition("~")
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a live process of another user
        return False
    return False


def remove_abandoned(folder: Path) -> list[Path]:
    """Delete the scratch files and folders (a partitioned write's) in `folder` whose writer has exited
    (killed before it could clean up).

    Safe at any time: a scratch of a live writer, another host, or with another name is left alone.
    """
    if not folder.is_dir():
        return []
    gone = [p for p in sorted(folder.iterdir()) if writer_gone(p)]
    for path in gone:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return gone


def new_tmp_path(settings: Settings, suffix: str = ".parquet") -> Path:
    path = tmp_dir(settings) / scratch_name(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def publish_file(tmp: Path, dest: Path) -> None:
    """Move a finished file into place atomically (readers see the old file or the new, never half)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def write_atomic(path: Path, data: bytes | str, settings: Settings | None = None) -> None:
    """Replace `path` with `data` (text as UTF-8): readers see the old file or the new, never half.

    A lake file (`settings` given) is written to a named scratch file in lake/_tmp, fsynced and renamed, so a
    killed writer's leftover is found and removed; any other file goes through `.<name>.tmp` beside it.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if settings is not None:
        tmp = new_tmp_path(settings, path.suffix)
        tmp.write_bytes(raw)
        publish_file(tmp, path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)


def write_json_atomic(
    path: Path,
    obj: Any,
    settings: Settings | None = None,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> None:
    """`obj` as JSON (json.dumps with these options), written by write_atomic."""
    write_atomic(path, json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default), settings)


def copy_to_parquet(
    con: duckdb.DuckDBPyConnection, query: str, dest: Path, settings: Settings, params: list | None = None
) -> None:
    """Write a query's result to `dest` as Parquet (zstd), atomically."""
    tmp = new_tmp_path(settings)
    con.execute(f"copy ({query}) to '{tmp.as_posix()}' (format parquet, compression zstd)", params or [])
    publish_file(tmp, dest)


def sql_text(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_list(paths: Iterable[Path | str]) -> str:
    """A DuckDB list literal of file paths, for read_parquet([...])."""
    return "[" + ", ".join(sql_text(str(p)) for p in paths) + "]"


def manifest_files(settings: Settings) -> list[Path]:
    d = manifest_dir(settings)
    return sorted(d.glob("*.parquet")) if d.exists() else []


def read_manifest(
    con: duckdb.DuckDBPyConnection, settings: Settings, stems: Iterable[str] | None = None
) -> str:
    """A SQL relation (subquery text) over the manifest, or over the rows of the files with the given
    `<seq>_<sha256>` stems; empty with the right columns when there is none."""
    if stems is None:
        files = manifest_files(settings)
    else:
        files = [
            p for p in (manifest_dir(settings) / f"{s}.parquet" for s in sorted(set(stems))) if p.exists()
        ]
    if files:
        return f"(select * from read_parquet({sql_list(files)}, union_by_name = true))"
    cols = ", ".join(f"null::{t} as {n}" for n, t in MANIFEST_COLUMNS.items())
    return f"(select {cols} where false)"


def committed_stems(settings: Settings) -> set[str]:
    """The `<seq>_<sha256>` stems of ingested files (those with a manifest row)."""
    return {p.stem for p in manifest_files(settings)}


def raw_files(settings: Settings, dataset: str, partitions: Iterable[str] | None = None) -> list[Path]:
    """Committed raw Parquet files of a dataset, optionally only in the given partitions."""
    base = raw_dir(settings, dataset)
    if not base.exists():
        return []
    wanted = set(partitions) if partitions is not None else None
    committed = committed_stems(settings)
    out: list[Path] = []
    for part in sorted(base.iterdir()):
        if wanted is not None and part.name not in wanted:
            continue
        out.extend(p for p in sorted(part.glob("*.parquet")) if p.stem in committed)
    return out
