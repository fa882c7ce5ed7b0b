"""Assemble warehouse/marts.duckdb from the aggregates and swap it in atomically.

A new DuckDB file is built in `warehouse/.building/` (the same file system as the published one) from
`lake/aggregates/` and `lake/quality/` only, never from raw data. Year-to-date, year-on-year and plan
columns are computed here, over every period. The finished file replaces `warehouse/marts.duckdb` with
`os.replace`: a reader that has the old file open keeps reading it, new connections see the new marts,
and a build that fails leaves the published file as it was.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from pathlib import Path

import duckdb

from etl.dictionary import comment_on
from etl.duck import connect
from etl.errors import PublishError
from etl.lake import QUALITY_COLUMNS, aggregates_dir, partition_files, quality_dir, sql_list
from etl.marts.aggregates import (
    CALENDAR_AGGREGATES,
    MONTHLY_AGGREGATES,
    OPERATIONS_AGGREGATES,
    PLANS_AGGREGATE,
    PLANS_COLUMNS,
    SIGNAL_AGGREGATES,
)
from etl.models import build, empty_select, models_in, register_raw, run_model
from etl.settings import Settings

log = logging.getLogger(__name__)


def building_dir(settings: Settings) -> Path:
    """Where new marts files are built, beside the published one so that the rename is atomic."""
    return settings.warehouse / ".building"


def _temp_view(con: duckdb.DuckDBPyConnection, name: str, files: list[Path], columns: dict[str, str]) -> None:
    """A temporary view over Parquet files (empty with `columns` when there are none)."""
    body = (
        f"select * from read_parquet({sql_list(files)}, union_by_name = true, hive_partitioning = false)"
        if files
        else empty_select(columns)
    )
    con.execute(f"create or replace temp view {name} as {body}")


def register_aggregates(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Register `aggregates_<model>` over every period of each aggregate, the current plans and the
    operations figures."""
    for model, columns in (MONTHLY_AGGREGATES | CALENDAR_AGGREGATES | SIGNAL_AGGREGATES).items():
        parts = partition_files(aggregates_dir(settings, model))
        _temp_view(con, f"aggregates_{model}", parts, columns)
    for model, columns in {PLANS_AGGREGATE: PLANS_COLUMNS, **OPERATIONS_AGGREGATES}.items():
        whole = aggregates_dir(settings, model) / "data.parquet"
        _temp_view(con, f"aggregates_{model}", [whole] if whole.exists() else [], columns)


def register_quality(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Register `quality_results` over every run's and stage's results in lake/quality."""
    _temp_view(con, "quality_results", sorted(quality_dir(settings).glob("*/*.parquet")), QUALITY_COLUMNS)


def _discard(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_intermediate_views(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the views of intermediate models the marts were built from: a marts file holds marts only."""
    views = con.execute(
        "select view_name from duckdb_views() where not internal and not temporary "
        "and database_name = current_database() and view_name not like 'mart\\_%' escape '\\'"
    ).fetchall()
    for (view,) in views:
        con.execute(f'drop view "{view}"')


def add_region_names(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Give every mart with a region_code a region_name after it (from the optional regions snapshots,
    the code where none names the region); returns the marts changed."""
    register_raw(con, settings, "regions")
    run_model(con, "stg_lake__regions", materialize="table")
    con.execute("create or replace temp table region_names as select * from stg_lake__regions")
    con.execute("drop table stg_lake__regions")
    con.execute("drop view raw_regions")
    marts = [
        t
        for (t,) in con.execute(
            "select table_name from duckdb_columns() where database_name = current_database() "
            "and table_name like 'mart_%' and column_name = 'region_code' "
            "except select table_name from duckdb_columns() where column_name = 'region_name' "
            "order by 1"
        ).fetchall()
    ]
    for table in marts:
        con.execute(f'alter table "{table}" add column region_name varchar')
        con.execute(
            f'update "{table}" as m set region_name = coalesce((select n.region_name '
            "from region_names as n where n.region_code = m.region_code), m.region_code)"
        )
    return marts


def new_building_file(settings: Settings, kind: str, run_id: str) -> Path:
    """A fresh path in warehouse/.building/ for a `kind` ("marts", "corporation") file of run `run_id`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:80]
    target = building_dir(settings) / f"{kind}_{slug}_{uuid.uuid4().hex[:8]}.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def replace_published(new_file: Path, published: Path) -> None:
    """Move a finished DuckDB file over the published one atomically and durably (OSError on failure)."""
    _fsync(new_file)
    published.parent.mkdir(parents=True, exist_ok=True)
    # a write-ahead log left beside the old file would otherwise be replayed into the new one
    published.with_name(published.name + ".wal").unlink(missing_ok=True)
    os.replace(new_file, published)
    _fsync(published.parent)


def build_file(settings: Settings, run_id: str) -> Path:
    """Build a new, not yet published marts file from the aggregates and quality results.

    Raises PublishError when the aggregates cannot be read or a mart cannot be built; nothing is left behind.
    """
    target = new_building_file(settings, "marts", run_id)
    built = False
    try:
        con = connect(settings, target)
        try:
            register_aggregates(con, settings)
            register_quality(con, settings)
            build(con, models_in("marts"))
            drop_intermediate_views(con)
            add_region_names(con, settings)
            comment_on(con)  # the data dictionary, for DESCRIBE-like queries and SQL clients
            con.execute("checkpoint")
        finally:
            con.close()
        built = True
    except (duckdb.Error, OSError) as exc:
        raise PublishError(f"building the marts of run {run_id} from {settings.lake} failed: {exc}") from exc
    finally:
        if not built:
            _discard(target)
    log.info("built %s", target)
    return target


def swap_in(settings: Settings, new_file: Path, run_id: str) -> Path:
    """Refresh mart_data_quality in `new_file` and move it over warehouse/marts.duckdb atomically.

    Raises PublishError when the file cannot be finished or moved; the published file then stays as it was.
    """
    published = settings.marts_path
    try:
        con = connect(settings, new_file)
        try:
            register_quality(con, settings)
            build(con, ["mart_data_quality"])
            comment_on(con)
            con.execute("checkpoint")
        finally:
            con.close()
        replace_published(new_file, published)
    except (duckdb.Error, OSError) as exc:
        _discard(new_file)
        raise PublishError(f"publishing {published} for run {run_id} failed: {exc}") from exc
    log.info("published %s (run %s)", published, run_id)
    return published


def publish(settings: Settings, run_id: str) -> Path:
    """Build a new marts file and swap it in. Raises PublishError; the published file then stays."""
    return swap_in(settings, build_file(settings, run_id), run_id)
