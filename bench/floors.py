"""The machine's floor under each stage: what the stage's bytes cost at the least.

For every stage, on the same files the stage reads:
- **disk**: the stage's input bytes read from the disk with O_DIRECT (the page cache bypassed), in 8 MiB
  aligned blocks, one file after the other: what reading the input costs before any work is done on it;
- **scan**: the cheapest DuckDB pass over the same input: for landing CSV, DuckDB's own parse
  (`select count(*) from read_csv(<file>, ignore_errors = true)`, every column typed, one file after the
  other); for Parquet, a bare `sum` of every numeric column over all the stage's files at once.

A stage's ratio to its floor is its time over the larger of the two: how far it is from the machine, not
only from a peer. Both run on a connection from etl.duck.connect (same memory limit and threads).
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from etl.duck import connect
from etl.lake import sql_list
from etl.settings import Settings

BLOCK = 8 * 1024 * 1024  # a multiple of every disk's logical block size, as O_DIRECT needs
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UBIGINT")


def disk_read(files: Sequence[Path]) -> dict[str, Any]:
    """Read every byte of `files` from the disk, bypassing the page cache; returns bytes and seconds.

    Falls back to buffered reads (and says so) on a file system that refuses O_DIRECT.
    """
    buffer = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    total = 0
    direct = True
    start = time.perf_counter()
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
        except OSError:
            direct = False
            fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                got = os.readv(fd, [buffer])
                total += got
                if got < BLOCK:
                    break
        finally:
            os.close(fd)
    seconds = time.perf_counter() - start
    return {"bytes": total, "seconds": seconds, "files": len(files), "direct": direct}


def _quote(path: Path) -> str:
    return "'" + path.as_posix().replace("'", "''") + "'"


def csv_parse(settings: Settings, files: Sequence[Path]) -> dict[str, Any]:
    """DuckDB's own parse of each CSV file (types sniffed and cast, nothing written); rows and seconds."""
    con = connect(settings)
    rows = 0
    try:
        start = time.perf_counter()
        for path in files:
            query = f"select count(*) from read_csv({_quote(path)}, ignore_errors = true)"
            found = con.execute(query).fetchone()
            rows += int(found[0]) if found else 0
        seconds = time.perf_counter() - start
    finally:
        con.close()
    return {"rows": rows, "seconds": seconds, "files": len(files)}


def parquet_sum(settings: Settings, files: Sequence[Path]) -> dict[str, Any]:
    """A bare `sum` of every numeric column over the Parquet files at once; rows and seconds."""
    if not files:
        return {"rows": 0, "seconds": 0.0, "files": 0, "columns": 0}
    con = connect(settings)
    source = f"read_parquet({sql_list(files)}, union_by_name = true, hive_partitioning = false)"
    try:
        described = con.execute(f"describe select * from {source}").fetchall()
        numeric = [name for name, kind, *_ in described if str(kind).upper().startswith(NUMERIC)]
        sums = ", ".join([f'sum("{c}")' for c in numeric] or ["0"])
        start = time.perf_counter()
        found = con.execute(f"select count(*), {sums} from {source}").fetchone()
        seconds = time.perf_counter() - start
    finally:
        con.close()
    rows = int(found[0]) if found else 0
    return {"rows": rows, "seconds": seconds, "files": len(files), "columns": len(numeric)}


def stage_floor(settings: Settings, files: Sequence[Path], kind: str) -> dict[str, Any]:
    """Both floors of one stage's input: `kind` is "csv" (landing files) or "parquet" (lake files)."""
    disk = disk_read(files)
    scan = csv_parse(settings, files) if kind == "csv" else parquet_sum(settings, files)
    return {"kind": kind, "disk": disk, "scan": scan, "seconds": max(disk["seconds"], scan["seconds"])}
