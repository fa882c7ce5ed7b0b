"""The bare DuckDB baselines meterflow's stages are compared with, on the same files and rows.

- ingest vs `COPY (FROM read_csv('<file>')) TO '<x>.parquet'` of each landing file ingest accepted;
- VEE vs a `QUALIFY row_number() ... = 1` dedupe of the same raw readings, written to Parquet: over
  all of them at once (`bare_dedupe`), and month by month, one raw partition after the other
  (`bare_dedupe_by_month`, the fair baseline: the raw lake is already split by month, as VEE is).

Both run on a connection from etl.duck.connect, so they get the same memory limit and threads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from etl.duck import connect
from etl.lake import partition_name, periods_under, raw_dir, raw_files, sql_list
from etl.settings import Settings

log = logging.getLogger(__name__)

# The contract keys of the readings (CONTRACT.md §2) and the order that picks the winning delivery.
DEDUPE_KEYS = {
    "interval_reads": ("meter_id", "channel", "interval_start"),
    "register_reads": ("meter_id", "read_at", "register"),
}
WINNER_ORDER = "_ingest_seq desc, _line_no desc"


def _quote(path: Path) -> str:
    return "'" + path.as_posix().replace("'", "''") + "'"


def bare_copy(settings: Settings, files: Sequence[Path], out_dir: Path) -> int:
    """Copy each CSV file to its own Parquet file with DuckDB's defaults; returns the rows written.

    `ignore_errors` lets the copy pass the few malformed rows that ingestion quarantines (a wrong field
    count would otherwise stop DuckDB); it changes nothing on well-formed rows.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(settings)
    rows = 0
    try:
        for number, source in enumerate(files):
            dest = out_dir / f"{number:06d}.parquet"
            copied = con.execute(
                f"copy (from read_csv({_quote(source)}, ignore_errors = true)) to {_quote(dest)}"
            ).fetchone()
            rows += int(copied[0]) if copied else 0
    finally:
        con.close()
    return rows


def dedupe_query(files: Sequence[Path], key: Sequence[str]) -> str:
    """The bare dedupe: one row per key, the most recently ingested file winning, then the later line."""
    partition = ", ".join(f'"{k}"' for k in key)
    return (
        f"select * from read_parquet({sql_list(files)}, union_by_name = true, hive_partitioning = false) "
        f"qualify row_number() over (partition by {partition} order by {WINNER_ORDER}) = 1"
    )


def bare_dedupe(settings: Settings, out_dir: Path) -> int:
    """Deduplicate the committed raw readings (interval and register) into Parquet; returns rows written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(settings)
    rows = 0
    try:
        for dataset, key in DEDUPE_KEYS.items():
            files = raw_files(settings, dataset)
            if not files:
                log.info("no raw %s to deduplicate", dataset)
                continue
            dest = out_dir / f"{dataset}.parquet"
            copied = con.execute(f"copy ({dedupe_query(files, key)}) to {_quote(dest)}").fetchone()
            rows += int(copied[0]) if copied else 0
    finally:
        con.close()
    return rows


def bare_dedupe_by_month(settings: Settings, out_dir: Path) -> int:
    """The same dedupe, one raw month partition at a time, each month to its own Parquet file.

    A key lies in one month (its partition is the month of its interval_start or read_at), so the months
    together write the same rows as `bare_dedupe`.
    """
    con = connect(settings)
    rows = 0
    try:
        for dataset, key in DEDUPE_KEYS.items():
            for month in sorted(periods_under(raw_dir(settings, dataset))):
                files = raw_files(settings, dataset, partitions=[partition_name(month)])
                if not files:
                    continue
                dest = out_dir / dataset / partition_name(month) / "data.parquet"
                dest.parent.mkdir(parents=True, exist_ok=True)
                copied = con.execute(f"copy ({dedupe_query(files, key)}) to {_quote(dest)}").fetchone()
                rows += int(copied[0]) if copied else 0
    finally:
        con.close()
    return rows
