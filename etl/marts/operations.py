"""The current state of every service request and inspection, kept in the lake and merged incrementally.

The operations marts' figures (etl/marts/aggregates.py) are computed from `int_service_requests__current`
and `int_inspections__current`: per key, the row of the most recently ingested file, then the later line
(CONTRACT.md §9). Ranking every delivery of every key again on each run reads the whole raw history; so
the current state is saved in `lake/aggregates/<model>/period=YYYY-MM/data.parquet` (by the month of
`received_at` / `inspected_on`), with `lake/aggregates/<model>/_files.json` listing the raw files
(`<partition>/<stem>.parquet`) folded into it. A run reads the saved state and only the raw files not
listed yet, ranks again only the keys those files deliver (their saved row beside their new rows, with the
model's own SQL, so a file ingested out of sequence still loses to a later one), and rewrites only the
months whose rows changed. The result is the same table a full rebuild makes (tests/test_operations.py
holds the two equal).

A full rebuild happens on `full`, without a saved state, and when a listed raw file is gone. The file list
is written after the months, so a run that stops half-way merges the same files again the next time,
which changes nothing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl.lake import aggregates_dir, copy_to_parquet, partition_file, raw_files, write_json_atomic
from etl.models import build, raw_columns, register_parquet, register_raw
from etl.settings import Settings

FILES_RECORD = "_files.json"


@dataclass(frozen=True)
class CurrentState:
    """One dataset's current-state model, its key, and the column whose month partitions the saved state."""

    dataset: str
    model: str
    key: str
    month_of: str

    @property
    def staging(self) -> str:
        return f"stg_lake__{self.dataset}"


STATES = (
    CurrentState("service_requests", "int_service_requests__current", "request_id", "received_at"),
    CurrentState("inspections", "int_inspections__current", "inspection_id", "inspected_on"),
)
CURRENT_MODELS = tuple(s.model for s in STATES)


def build_current(con: duckdb.DuckDBPyConnection, settings: Settings, full: bool = False) -> dict[str, int]:
    """Create table `<model>` of every current-state model in `con`, from the saved state and the raw
    files not folded into it yet (all raw files when `full`), and save the state; returns the raw files
    read per model. Raises duckdb.Error when a file cannot be read; the saved state then stays valid."""
    return {state.model: _build_one(con, settings, state, full) for state in STATES}


def _raw_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _state_files(settings: Settings, state: CurrentState) -> list[Path]:
    return sorted(aggregates_dir(settings, state.model).glob("period=*/data.parquet"))


def _folded(settings: Settings, state: CurrentState) -> set[str] | None:
    record = aggregates_dir(settings, state.model) / FILES_RECORD
    if not record.exists():
        return None
    return set(json.loads(record.read_text(encoding="utf-8")))


def _build_one(con: duckdb.DuckDBPyConnection, settings: Settings, state: CurrentState, full: bool) -> int:
    raw = raw_files(settings, state.dataset)
    names = {_raw_name(p) for p in raw}
    folded = None if full else _folded(settings, state)
    if folded is None or not folded <= names:
        register_raw(con, settings, state.dataset)
        build(con, [state.model])
        shutil.rmtree(aggregates_dir(settings, state.model), ignore_errors=True)
        _write_months(con, settings, state, state.model, None)
        _write_record(settings, state, names)
        return len(raw)
    new = [p for p in raw if _raw_name(p) not in folded]
    if new:
        _merge(con, settings, state, new)
        _write_record(settings, state, names)
    saved = _state_files(settings, state)
    if saved:
        # a view: each figure reads only the columns it needs from the saved months
        con.execute(f"drop table if exists {state.model}")
        register_parquet(con, state.model, saved, {})
    else:
        register_raw(con, settings, state.dataset)  # nothing delivered yet: the model's empty table
        build(con, [state.model])
    return len(new)


def _merge(con: duckdb.DuckDBPyConnection, settings: Settings, state: CurrentState, new: list[Path]) -> None:
    """Rank the keys that the `new` raw files deliver again, and rewrite the saved months they change."""
    key, month = state.key, f"strftime({state.month_of}, '%Y-%m')"
    register_parquet(con, f"raw_{state.dataset}", new, raw_columns(state.dataset))
    build(con, [state.staging])
    con.execute(f"create or replace temp table _new as select * from {state.staging}")
    con.execute(f"drop view {state.staging}")
    con.execute(f"create or replace temp table _touched as select distinct {key} from _new")
    saved = _state_files(settings, state)
    if saved:
        register_parquet(con, "_saved", saved, {})
        con.execute(
            f"create or replace temp table _old as select * from _saved semi join _touched using ({key})"
        )
        con.execute("drop view _saved")
    else:
        con.execute("create or replace temp table _old as select * from _new where false")
    # the model ranks the touched keys' saved rows beside their new deliveries
    con.execute(f"create table {state.staging} as select * from _old union all by name select * from _new")
    build(con, [state.model], given=[state.staging])
    con.execute(f"alter table {state.model} rename to _merged")
    changed = con.execute(f"select distinct {month} from _old union select distinct {month} from _merged")
    for (period,) in sorted(changed.fetchall()):
        dest = partition_file(aggregates_dir(settings, state.model), period)
        kept = ""
        if dest.exists():
            kept = f"select * from read_parquet('{dest.as_posix()}') anti join _touched using ({key}) "
            kept += "union all by name "
        con.execute(
            f"create or replace temp table _month as {kept}select * from _merged where {month} = ?", [period]
        )
        _write_months(con, settings, state, "_month", {period})
    for table in ("_new", "_touched", "_old", "_merged", "_month", state.staging):
        con.execute(f"drop table if exists {table}")


def _write_months(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    state: CurrentState,
    table: str,
    months: set[str] | None,
) -> None:
    """Write the saved state's months (all of them when None) from `table`; a month left without rows
    loses its file."""
    month = f"strftime({state.month_of}, '%Y-%m')"
    present = {r[0] for r in con.execute(f"select distinct {month} from {table}").fetchall()}
    for period in sorted(present if months is None else months):
        dest = partition_file(aggregates_dir(settings, state.model), period)
        if period in present:
            query = f"select * from {table} where {month} = ? order by {state.key}"
            copy_to_parquet(con, query, dest, settings, [period])
        elif dest.parent.exists():
            shutil.rmtree(dest.parent)


def _write_record(settings: Settings, state: CurrentState, names: set[str]) -> None:
    write_json_atomic(aggregates_dir(settings, state.model) / FILES_RECORD, sorted(names), settings)
