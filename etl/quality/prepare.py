"""The relations each stage's suites check, built in a scratch DuckDB file.

raw: views over the run's raw Parquet and the file accounting; validated: views over the validated
partitions in scope, the current meters and the energy summed from the intervals; marts: copies of the
new marts, the current network, tariff bounds and the billing reconciliation. The business queries are
in sql/checks/<table>.sql. Two catalog tables answer checks that GX cannot, or cannot cheaply, run on a
table itself: `_columns` (every column's type) and `_repeated_keys` (keys that occur more than once).

Each table ends as its row count, or as why it is absent: `NotChecked` when there is nothing to check (an
optional dataset never delivered, or none of it in scope), `NotBuilt` when it should exist and does not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl import current
from etl.contract import DATASETS
from etl.duck import connect
from etl.errors import QualityError
from etl.lake import (
    file_stem,
    layer_dir,
    partition_files,
    partition_name,
    raw_dir,
    raw_files,
    read_manifest,
    sql_list,
    validated_dir,
)
from etl.models import SQL_DIR, build, raw_columns, register_parquet
from etl.periods import shift
from etl.quality.suites import UNIQUE_CHECK, Suite
from etl.settings import Settings

CHECKS_SQL_DIR = SQL_DIR / "checks"
VALIDATED_TABLES = ("interval_reads", "meter_monthly", "register_consumption")
# The raw dataset each validated table is made from: without it delivered there is nothing to check.
VALIDATED_SOURCES = {
    "interval_reads": "interval_reads",
    "meter_monthly": "interval_reads",
    "register_consumption": "register_reads",
}
MARTS = (
    "mart_kpi_monthly",
    "mart_sales_monthly",
    "mart_energy_balance_monthly",
    "mart_meter_monthly",
    "mart_loss_hotspots_monthly",
    "mart_inspection_candidates",
)
# The operations marts and the dataset whose delivery gives them rows (CONTRACT.md §9).
OPERATIONS_MARTS = {"mart_service_monthly": "service_requests", "mart_inspections_monthly": "inspections"}
COLUMNS_TABLE = "_columns"
KEYS_TABLE = "_repeated_keys"


@dataclass(frozen=True)
class NotChecked:
    """Nothing to check: an optional dataset never delivered, or none of it in this check's scope."""

    reason: str


@dataclass(frozen=True)
class NotBuilt:
    """A table the checks need is missing although it should exist: its checks are recorded as failed."""

    reason: str
    severity: str


Tables = dict[str, int | NotChecked | NotBuilt]  # table in the scratch database -> its rows, or why absent


def check_sql(name: str) -> str:
    """The query of sql/checks/<name>.sql. Raises OSError when there is no such file."""
    return (CHECKS_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8").strip().rstrip(";")


def build_check_table(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Create table `name` from sql/checks/<name>.sql; 0, a placeholder for its row count."""
    con.execute(f"create table {name} as {check_sql(name)}")
    return 0


def prepare(
    settings: Settings,
    scratch: Path,
    run_id: str,
    stage: str,
    database: Path | None,
    periods: Sequence[str] | None,
    suites: Sequence[Suite],
    run_files: Collection[str] | None = None,
) -> Tables:
    """Create the stage's views, check tables and catalog tables in the scratch database.

    Raises QualityError when the marts check has no marts file.
    """
    preparers: dict[str, Callable[[duckdb.DuckDBPyConnection], Tables]] = {
        "raw": lambda con: _prepare_raw(con, settings, run_id, periods, run_files),
        "validated": lambda con: _prepare_validated(con, settings, periods),
        "marts": lambda con: _prepare_marts(con, settings, database, periods),
    }
    con = connect(settings, scratch)
    try:
        tables = preparers[stage](con)
        for table, value in tables.items():
            if isinstance(value, int):
                (tables[table],) = con.execute(f"select count(*) from {table}").fetchall()[0]
        con.execute(
            f"create table {COLUMNS_TABLE} as select table_name, column_name, data_type "
            "from duckdb_columns() where database_name = current_database()"
        )
        _prepare_repeated_keys(con, suites, tables)
        con.execute("checkpoint")
    finally:
        con.close()
    return tables


def _delivered(settings: Settings, dataset: str) -> bool:
    """Whether any raw file of the dataset exists (a directory listing; no manifest read)."""
    return any(raw_dir(settings, dataset).glob("*/*.parquet"))


def _label(dataset: str) -> str:
    return dataset.replace("_", " ")


def _never_delivered(dataset: str) -> NotChecked:
    return NotChecked(f"no {_label(dataset)} delivered yet")


# ---------------------------------------------------------------------------------- repeated keys


def _prepare_repeated_keys(con: duckdb.DuckDBPyConnection, suites: Sequence[Suite], tables: Tables) -> None:
    """Keys that occur more than once, per uniqueness check, found with one GROUP BY each.

    GX's own compound-unique expectation joins the grouped counts back to every row and runs twice (count,
    then examples): 4.7 s on 5 M rows where this takes about 1.5 s on the same busy machine.
    """
    con.execute(f"create table {KEYS_TABLE} (suite varchar, check_name varchar, key varchar, copies bigint)")
    for suite in suites:
        if not isinstance(tables.get(suite.table), int):
            continue
        for exp in (e for e in suite.expectations if e.type == UNIQUE_CHECK):
            columns = exp.kwargs["column_list"]
            try:
                con.execute(_repeated_keys_sql(suite.table, columns), [suite.name, exp.check_name])
            except duckdb.Error as exc:
                # Recorded as a repeat, so that the check fails visibly instead of passing on a broken table.
                problem = f"cannot group on ({', '.join(columns)}): {str(exc).splitlines()[0]}"
                con.execute(
                    f"insert into {KEYS_TABLE} values (?, ?, ?, null)", [suite.name, exp.check_name, problem]
                )


def _repeated_keys_sql(table: str, key_columns: Sequence[str]) -> str:
    """Insert into `_repeated_keys` the keys of `table` that occur more than once (params: suite, check).

    A GROUP BY on a 64-bit hash is cheaper than on the columns; only rows whose hash repeats are grouped
    again on the columns themselves, so a hash collision never counts as a repeat.
    """
    columns = ", ".join(key_columns)
    key_text = "concat_ws(' | ', " + ", ".join(f"{c}::varchar" for c in key_columns) + ")"
    return f"""
        insert into {KEYS_TABLE}
        with

        repeated_hashes as (
            select hash({columns}) as key_hash
            from {table}
            group by key_hash
            having count(*) > 1
        ),

        candidates as (
            select {columns}
            from {table}
            where hash({columns}) in (select key_hash from repeated_hashes)
        ),

        final as (
            select
                ? as suite,
                ? as check_name,
                {key_text} as key,
                count(*) as copies,
            from candidates
            group by {columns}
            having count(*) > 1
        )

        select * from final
    """


# -------------------------------------------------------------------------------------------------- raw


def _raw_scope(
    settings: Settings, dataset: str, periods: Sequence[str] | None, run_stems: set[str]
) -> list[Path]:
    """The raw files to check: all of them, or this run's files in the given periods (reference
    datasets: this run's snapshots). Every raw check is about one file's rows, so files that earlier runs
    ingested (and checked) need no second look."""
    if periods is None:
        return raw_files(settings, dataset)
    partitions = None if DATASETS[dataset].is_reference else [partition_name(p) for p in periods]
    return [f for f in raw_files(settings, dataset, partitions) if f.stem in run_stems]


def _prepare_raw(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    periods: Sequence[str] | None,
    run_files: Collection[str] | None = None,
) -> Tables:
    tables: Tables = {}
    scoped = None if periods is None else run_files  # the whole check accounts for every manifest row
    manifest = con.execute(
        f"select ingest_seq, file_hash from {read_manifest(con, settings, scoped)} where run_id = ?", [run_id]
    )
    run_stems = {file_stem(seq, sha) for seq, sha in manifest.fetchall()}
    for dataset in DATASETS:
        files = _raw_scope(settings, dataset, periods, run_stems)
        register_parquet(con, f"raw_{dataset}", files, raw_columns(dataset))
        if files:
            tables[f"raw_{dataset}"] = 0
        elif not _delivered(settings, dataset):
            tables[f"raw_{dataset}"] = _never_delivered(dataset)
        else:
            tables[f"raw_{dataset}"] = NotChecked(f"no {_label(dataset)} among the files in scope")
    tables["raw_file_accounting"] = _prepare_file_accounting(
        con, settings, run_id, periods is not None, scoped
    )
    return tables


def _prepare_file_accounting(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    this_run_only: bool,
    run_files: Collection[str] | None = None,
) -> int:
    """The inputs of sql/checks/raw_file_accounting.sql, then that table: per manifest file (this run's
    when scoped), the manifest's counts beside the rows found in the lake.

    Row counts come from the Parquet footers, so no data page is read.
    """
    con.execute(
        f"create table manifest_in_scope as select * from {read_manifest(con, settings, run_files)} "
        + ("where run_id = ?" if this_run_only else ""),
        [run_id] if this_run_only else [],
    )
    pairs = con.execute("select ingest_seq, file_hash from manifest_in_scope").fetchall()
    stems = {file_stem(seq, sha): (seq, sha) for seq, sha in pairs}
    raw, quarantine = layer_dir(settings, "raw"), layer_dir(settings, "quarantine")
    files = [*raw.glob("*/*/*.parquet"), *quarantine.glob("*/*.parquet")]
    files = [p for p in files if p.stem in stems]
    con.execute("create table lake_files (stem varchar, is_quarantine boolean, num_rows bigint)")
    if files:
        footers = con.execute(f"select file_name, num_rows from parquet_file_metadata({sql_list(files)})")
        rows = [(Path(name).stem, quarantine in Path(name).parents, n) for name, n in footers.fetchall()]
        con.executemany("insert into lake_files values (?, ?, ?)", rows)
    con.execute("create table manifest_stems (ingest_seq bigint, file_hash varchar, stem varchar)")
    if stems:  # a scope with no manifest file (a run that ingested nothing) checks nothing
        con.executemany(
            "insert into manifest_stems values (?, ?, ?)",
            [(seq, sha, stem) for stem, (seq, sha) in stems.items()],
        )
    return build_check_table(con, "raw_file_accounting")


# -------------------------------------------------------------------------------------------- validated


def _partition_files(base: Path, periods: Sequence[str] | None) -> list[Path]:
    wanted = None if periods is None else {partition_name(p) for p in periods}
    return [p for p in partition_files(base) if wanted is None or p.parent.name in wanted]


def _register_validated(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, periods: Sequence[str] | None
) -> int | NotChecked | NotBuilt:
    """View `validated_<table>` over the table's partitions in scope, or why there is none."""
    base = validated_dir(settings, table)
    if not partition_files(base):
        source = VALIDATED_SOURCES[table]
        if not _delivered(settings, source):
            return _never_delivered(source)
        return NotBuilt(f"not built: lake/validated/{table} has no partition yet", "warning")
    files = _partition_files(base, periods)
    if not files:
        return NotChecked(f"no lake/validated/{table} partition for {', '.join(periods or [])}")
    register_parquet(con, f"validated_{table}", files, {})
    return 0


def _prepare_validated(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: Sequence[str] | None
) -> Tables:
    tables: Tables = {
        f"validated_{t}": _register_validated(con, settings, t, periods) for t in VALIDATED_TABLES
    }
    current.load(con, settings, "int_meters__current")
    tables["int_meters__current"] = 0
    intervals = tables["validated_interval_reads"]
    tables["interval_energy_monthly"] = (
        build_check_table(con, "interval_energy_monthly") if isinstance(intervals, int) else intervals
    )
    return tables


# ------------------------------------------------------------------------------------------------ marts


def _prepare_marts(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    database: Path | None,
    periods: Sequence[str] | None,
) -> Tables:
    if database is None or not Path(database).exists():
        raise QualityError(f"marts check needs the new marts database file; got {database}")
    con.execute(f"attach '{Path(database).as_posix()}' as marts_file (read_only)")
    present = {
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'marts_file'"
        ).fetchall()
    }
    tables: Tables = {}
    for mart in (*MARTS, *OPERATIONS_MARTS):
        if mart in OPERATIONS_MARTS and not _delivered(settings, OPERATIONS_MARTS[mart]):
            tables[mart] = _never_delivered(OPERATIONS_MARTS[mart])
        elif mart in present:
            # Marts are small; a copy lets GX open the scratch file alone, read-only.
            con.execute(f"create table {mart} as select * from marts_file.main.{mart}")
            tables[mart] = 0
        else:
            tables[mart] = NotBuilt(f"not built: {database.name} has no table {mart}", "critical")
    con.execute("detach marts_file")
    tables["int_network__current"] = _prepare_network(con, settings)
    tables["tariff_bounds"] = _prepare_tariff_bounds(con, settings, tables)
    tables["billing_reconciliation"] = _prepare_reconciliation(con, settings, tables, periods)
    return tables


def _prepare_network(con: duckdb.DuckDBPyConnection, settings: Settings) -> int | NotChecked:
    """The current network: each node from the newest snapshot listing it, so every network snapshot."""
    files = raw_files(settings, "network")
    if not files:
        return _never_delivered("network")
    current.load(con, settings, "int_network__current")
    return 0


def _prepare_tariff_bounds(
    con: duckdb.DuckDBPyConnection, settings: Settings, tables: Tables
) -> int | NotChecked | NotBuilt:
    """sql/checks/tariff_bounds.sql over the newest tariffs snapshot (the only one the query reads)."""
    if not isinstance(tables.get("mart_kpi_monthly"), int):
        return NotBuilt("not built: mart_kpi_monthly is missing", "warning")
    files = _newest_snapshot_files(settings, "tariffs")
    if not files:
        return _never_delivered("tariffs")
    register_parquet(con, "raw_tariffs", files, raw_columns("tariffs"))
    build(con, ["stg_lake__tariffs"])
    return build_check_table(con, "tariff_bounds")


def _newest_snapshot_files(settings: Settings, dataset: str) -> list[Path]:
    """The committed files of a reference dataset's newest snapshot (none when it has no snapshot)."""
    partitions = raw_dir(settings, dataset)
    names = (
        sorted((p.name for p in partitions.glob("snapshot=*")), reverse=True) if partitions.is_dir() else []
    )
    for name in names:
        files = raw_files(settings, dataset, [name])
        if files:
            return files
    return []


def _bill_line_files(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: Sequence[str]
) -> list[Path]:
    """The raw bill-line files that int_bill_lines__current needs for `periods`: their partitions, and
    every other file that may hold a line of an export billed in them.

    A file of another partition is left out only when the export_id statistics in its Parquet footer
    (the smallest and largest export_id of each row group) rule out every export of these periods, so
    only footers are read beyond the periods' own partitions; a row group without statistics keeps its
    file in.
    """
    wanted = {partition_name(p) for p in periods}
    every = raw_files(settings, "bill_lines")
    own = [f for f in every if f.parent.name in wanted]
    others = [f for f in every if f.parent.name not in wanted]
    if not own or not others:
        return own
    con.execute(
        "create temp table _period_exports as select distinct export_id "
        f"from read_parquet({sql_list(own)}, union_by_name = true, hive_partitioning = false)"
    )
    rows = con.execute(
        f"""
        with

        row_groups as (
            select file_name, stats_min_value, stats_max_value
            from parquet_metadata({sql_list(others)})
            where path_in_schema = 'export_id'
        )

        select distinct g.file_name
        from row_groups as g
        where
            g.stats_min_value is null
            or g.stats_max_value is null
            or exists (
                select 1 from _period_exports as e
                where e.export_id between g.stats_min_value and g.stats_max_value
            )
        """
    ).fetchall()
    con.execute("drop table _period_exports")
    needed = {r[0] for r in rows}
    return own + [f for f in others if str(f) in needed]


def _reconciliation_periods(con: duckdb.DuckDBPyConnection, periods: Sequence[str] | None) -> list[str]:
    """The billing periods to reconcile: those given, else the newest period with kWh sold."""
    if periods:
        return list(periods)
    row = con.execute("select max(period) from mart_kpi_monthly where kwh_sold is not null").fetchone()
    return [row[0]] if row and row[0] else []


def _prepare_reconciliation(
    con: duckdb.DuckDBPyConnection, settings: Settings, tables: Tables, periods: Sequence[str] | None
) -> int | NotChecked | NotBuilt:
    """sql/checks/billing_reconciliation.sql over the bills of the periods to reconcile and the validated
    register consumption of those periods and their neighbours."""
    if not isinstance(tables.get("mart_kpi_monthly"), int):
        return NotBuilt("not built: mart_kpi_monthly is missing", "warning")
    if not _delivered(settings, "bill_lines"):
        return _never_delivered("bill_lines")
    wanted = _reconciliation_periods(con, periods)
    if not wanted:
        return NotChecked("no period with kWh sold yet")
    around = sorted({p for period in wanted for p in (shift(period, -1), period, shift(period, 1))})
    consumption = _register_validated(con, settings, "register_consumption", around)
    if not isinstance(consumption, int):
        return consumption
    files = _bill_line_files(con, settings, wanted)
    register_parquet(con, "raw_bill_lines", files, raw_columns("bill_lines"))
    build(con, ["int_bill_lines__current"], params={"build_periods": wanted})
    return build_check_table(con, "billing_reconciliation")
