"""Runs the DuckDB SQL models in sql/ and registers the lake as their sources.

A model is one `select` in `sql/<layer>/<name>.sql`; running it materialises a table (or view) of the
same name in the connection. Models read only relations registered here or built by earlier models:
`raw_<dataset>` (committed raw Parquet of a dataset), `validated_<table>` and `aggregates_<model>`
(the lake's derived layers). Monthly models read the periods they build from `getvariable('build_periods')`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from etl.contract import DATASETS, LINEAGE_COLUMNS, SNAPSHOT_COLUMN
from etl.lake import raw_files, sql_list
from etl.settings import Settings

if TYPE_CHECKING:
    import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
LAYERS = ("staging", "intermediate", "marts")


@cache
def model_path(name: str) -> Path:
    """The file of model `name`. Raises KeyError when no layer has it."""
    for layer in LAYERS:
        path = SQL_DIR / layer / f"{name}.sql"
        if path.exists():
            return path
    raise KeyError(f"no SQL model named {name!r} under {SQL_DIR}")


def model_sql(name: str) -> str:
    return model_path(name).read_text(encoding="utf-8").strip().rstrip(";")


def run_model(con: duckdb.DuckDBPyConnection, name: str, materialize: str = "table") -> None:
    """Build model `name` as a table (default) or view in `con`."""
    con.execute(f"create or replace {materialize} {name} as {model_sql(name)}")


def run_models(con: duckdb.DuckDBPyConnection, names: Iterable[str], materialize: str = "table") -> None:
    for name in names:
        run_model(con, name, materialize)


def set_periods(con: duckdb.DuckDBPyConnection, periods: list[str]) -> None:
    """Set the `build_periods` variable (a list of 'YYYY-MM') that the monthly models read."""
    con.execute("set variable build_periods = ?::varchar[]", [periods])


def empty_select(columns: dict[str, str]) -> str:
    cols = ", ".join(f"null::{t} as {n}" for n, t in columns.items())
    return f"select {cols} where false"


def raw_columns(dataset: str) -> dict[str, str]:
    """The raw layer's columns of a dataset: contract columns then lineage."""
    spec = DATASETS[dataset]
    cols = {c.name: c.lake_type for c in spec.columns} | LINEAGE_COLUMNS
    return cols | SNAPSHOT_COLUMN if spec.is_reference else cols


def register_parquet(
    con: duckdb.DuckDBPyConnection, view: str, files: list[Path], columns: dict[str, str]
) -> None:
    """Create view `view` over Parquet files, or an empty one with `columns` when there are none."""
    if files:
        body = (
            f"select * from read_parquet({sql_list(files)}, union_by_name = true, hive_partitioning = false)"
        )
    else:
        body = empty_select(columns)
    con.execute(f"create or replace view {view} as {body}")


def register_raw(
    con: duckdb.DuckDBPyConnection, settings: Settings, dataset: str, partitions: Iterable[str] | None = None
) -> None:
    """Register `raw_<dataset>` over the dataset's committed raw files (optionally some partitions)."""
    register_parquet(con, f"raw_{dataset}", raw_files(settings, dataset, partitions), raw_columns(dataset))
