"""Data quality at every stage: the suites in expectations/<stage>/ run by Great Expectations inside DuckDB.

`check(settings, run_id, stage)` builds a scratch DuckDB file under `<home>/tmp/quality/` with views over
the stage's Parquet (and copies of the marts, which are small), points one GX SQL datasource at it and
runs each suite as one validation of its table, so every count is computed by DuckDB. Cross-table checks
(row conservation, reconciliation) are SQL tables prepared here and checked by GX like any other table.
Results go to `lake/quality/<run_id>/<stage>.parquet` first, then GX Data Docs to `<home>/docs/gx/<stage>/`,
then a critical failure raises QualityError.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from etl.contract import DATASETS
from etl.duck import connect
from etl.errors import QualityError
from etl.lake import (
    QUALITY_COLUMNS,
    copy_to_parquet,
    file_stem,
    quality_dir,
    raw_dir,
    raw_files,
    read_manifest,
    remove_abandoned,
    scratch_name,
    sql_list,
    validated_dir,
)
from etl.lock import data_home_lock
from etl.models import raw_columns, register_parquet, run_model, set_periods
from etl.quality import gx_duckdb
from etl.settings import Settings

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
STAGES = ("raw", "validated", "marts")
SEVERITIES = ("critical", "warning")
VALIDATED_TABLES = ("interval_reads", "meter_monthly", "register_consumption")
MARTS = ("mart_kpi_monthly", "mart_sales_monthly", "mart_energy_balance_monthly")
# Our own expectation names; every other `type` is a GX expectation.
TYPES_CHECK = "expect_columns_to_have_types"
ROWS_CHECK = "unexpected_rows"
UNIQUE_CHECK = "expect_compound_columns_to_be_unique"
# Catalog tables the preparation fills for checks that GX cannot, or cannot cheaply, run on the table itself.
COLUMNS_TABLE = "_columns"
KEYS_TABLE = "_repeated_keys"
# Counts, and a few failing values for the Data Docs (each example list is one more query per check).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}


@dataclass(frozen=True)
class Expectation:
    """One declared check: a GX expectation (or one of ours) with its severity and a sentence."""

    type: str
    kwargs: dict[str, Any]
    severity: str
    description: str
    name: str | None = None
    requires: tuple[str, ...] = ()  # tables besides the suite's own that the check reads

    @property
    def check_name(self) -> str:
        kw = self.kwargs
        if self.name:
            detail = self.name
        elif "column" in kw:
            detail = kw["column"]
        elif "column_list" in kw:
            detail = ", ".join(kw["column_list"])
        else:
            return self.type
        return f"{self.type}({detail})"


@dataclass(frozen=True)
class Suite:
    """The expectations of one dataset at one stage, run against one table of the scratch database."""

    name: str
    table: str
    description: str
    expectations: tuple[Expectation, ...]

    @property
    def stage(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class Skip:
    """Why a suite or check did not run, recorded as a result row rather than passed over in silence."""

    reason: str
    passed: bool
    severity: str


@dataclass
class QualityReport:
    """The results of one stage's checks in one run (rows with etl.lake.QUALITY_COLUMNS)."""

    run_id: str
    stage: str
    results: list[dict] = field(default_factory=list)

    @property
    def critical_failures(self) -> list[dict]:
        return [r for r in self.results if r["severity"] == "critical" and not r["passed"]]

    @property
    def warnings(self) -> list[dict]:
        return [r for r in self.results if r["severity"] == "warning" and not r["passed"]]

    def summary_lines(self) -> list[str]:
        """A line per suite (checks passed, warnings, critical failures), then one per failed check."""
        lines = []
        for suite in sorted({r["suite"] for r in self.results}):
            rows = [r for r in self.results if r["suite"] == suite]
            failed = [r for r in rows if not r["passed"]]
            critical = sum(r["severity"] == "critical" for r in failed)
            lines.append(
                f"{suite}: {len(rows) - len(failed)}/{len(rows)} checks passed"
                f", {len(failed) - critical} warning(s), {critical} critical"
            )
            lines.extend(f"  {r['severity'].upper()} {_failure_text(r)}" for r in failed)
        return lines


def _failure_text(row: dict) -> str:
    if row["rows_failed"] is None:
        return f"{row['check_name']}: {row['description']}"
    return (
        f"{row['check_name']}: {row['rows_failed']} of {row['rows_checked']} rows failed"
        f" ({row['description']})"
    )


# ---------------------------------------------------------------------------------------------- suites


def load_suite(path: Path) -> Suite:
    """Read one suite file. Raises QualityError when it is malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        expectations = tuple(
            Expectation(
                type=e["type"],
                kwargs=e.get("kwargs", {}),
                severity=e["severity"],
                description=e["description"],
                name=e.get("name"),
                requires=tuple(e.get("requires", ())),
            )
            for e in data["expectations"]
        )
        suite = Suite(data["suite"], data["table"], data["description"], expectations)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QualityError(f"suite file {path} is malformed: {exc!r}") from exc
    bad = [e.check_name for e in expectations if e.severity not in SEVERITIES]
    if bad or suite.stage != path.parent.name:
        raise QualityError(f"suite file {path}: stage or severity wrong (checks {bad})")
    return suite


def load_suites(stage: str) -> list[Suite]:
    """The suites of a stage, in file-name order. Raises QualityError for an unknown stage."""
    if stage not in STAGES:
        raise QualityError(f"unknown data-quality stage {stage!r}; expected one of {STAGES}")
    return [load_suite(p) for p in sorted((EXPECTATIONS_DIR / stage).glob("*.json"))]


# ----------------------------------------------------------------------------------------------- check


def check(
    settings: Settings,
    run_id: str,
    stage: str,
    database: Path | None = None,
    periods: Sequence[str] | None = None,
    run_files: Collection[str] | None = None,
) -> QualityReport:
    """Run a stage's suites and record the results.

    `periods` ('YYYY-MM') limits raw and validated checks to those partitions (raw: to this run's files
    in them, and this run's reference snapshots); `database` is the new marts file for stage "marts".
    `run_files`, the `<seq>_<sha256>` stems of the files this run ingested or rejected, spares the
    scoped raw check a read of every manifest file to find them.
    Raises QualityError naming suite, check and failing count when a critical check fails (the results
    are written first), or when the checks cannot run.
    """
    suites = load_suites(stage)
    settings = replace(settings, home=settings.home.absolute())
    scratch = _scratch_path(settings, run_id, stage)
    try:
        tables = _prepare(settings, scratch, run_id, stage, database, periods, suites, run_files)
        report, context = _validate(settings, scratch, run_id, stage, suites, tables)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".wal")):
            leftover.unlink(missing_ok=True)
    _write_results(settings, report)
    # Ingestion DAGs of several source families may check the raw stage at the same time.
    with data_home_lock(settings, f"gx-docs-{stage}", wait=600), _compiled_templates_kept(settings):
        context.build_data_docs(site_names=[gx_duckdb.DOCS_SITE])
    for line in report.summary_lines():
        log.info("%s", line)
    if report.critical_failures:
        raise QualityError(
            f"data quality {stage} (run {run_id}): critical check(s) failed: "
            + "; ".join(f"{r['suite']}: {_failure_text(r)}" for r in report.critical_failures)
        )
    return report


_TEMPLATES_LOCK = threading.Lock()


@contextmanager
def _compiled_templates_kept(settings: Settings) -> Iterator[None]:
    """Keep the Jinja templates of GX's Data Docs compiled in `<home>/tmp/gx-templates/` meanwhile.

    Each Data Docs view of GX makes its own Jinja environment and so parses and compiles its templates
    again: about 1 s of every check's 1.5 s of Data Docs. With Jinja's bytecode cache (keyed by template
    name and source checksum, written by rename) a check compiles only what no earlier check did. The
    pages are the same. Without GX's view class as expected the docs are built as before.
    """
    from jinja2 import FileSystemBytecodeCache

    try:
        from great_expectations.render.view.view import DefaultJinjaView
    except ImportError:
        yield
        return
    folder = settings.home / "tmp" / "gx-templates"
    folder.mkdir(parents=True, exist_ok=True)
    cache = FileSystemBytecodeCache(folder.as_posix())
    original = DefaultJinjaView.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.env.bytecode_cache = cache

    with _TEMPLATES_LOCK:  # the class is patched for this process: one check's docs at a time
        DefaultJinjaView.__init__ = init  # type: ignore[method-assign]
        try:
            yield
        finally:
            DefaultJinjaView.__init__ = original  # type: ignore[method-assign]


def docs_dir(settings: Settings, stage: str) -> Path:
    """Where a stage's GX Data Docs go (the latest check of that stage)."""
    return settings.docs / "gx" / stage


def _scratch_path(settings: Settings, run_id: str, stage: str) -> Path:
    """A new scratch database path; unique, as checks of one run id may run side by side."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    path = settings.home / "tmp" / "quality" / scratch_name(".duckdb", label=f"{safe}-{stage}-")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(path.parent)  # the scratch of checks killed mid-way
    return path


def _write_results(settings: Settings, report: QualityReport) -> Path:
    """Write the results to lake/quality/<run_id>/<stage>.parquet atomically."""
    dest = quality_dir(settings) / report.run_id / f"{report.stage}.parquet"
    con = connect(settings)
    try:
        cols = ", ".join(f"{n} {t}" for n, t in QUALITY_COLUMNS.items())
        con.execute(f"create table results ({cols})")
        if report.results:
            marks = ", ".join("?" for _ in QUALITY_COLUMNS)
            con.executemany(
                f"insert into results values ({marks})",
                [[r[c] for c in QUALITY_COLUMNS] for r in report.results],
            )
        copy_to_parquet(con, "select * from results", dest, settings)
    finally:
        con.close()
    return dest


# -------------------------------------------------------------------------------------- preparation

Tables = dict[str, "int | Skip"]  # table in the scratch database -> its row count, or why it is absent


def _prepare(
    settings: Settings,
    scratch: Path,
    run_id: str,
    stage: str,
    database: Path | None,
    periods: Sequence[str] | None,
    suites: Sequence[Suite],
    run_files: Collection[str] | None = None,
) -> Tables:
    """Create the stage's views, helper tables and catalog tables in the scratch database."""
    preparers: dict[str, Callable[..., Tables]] = {
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


def _raw_scope(
    settings: Settings, dataset: str, periods: Sequence[str] | None, run_stems: set[str]
) -> list[Path]:
    """The raw files to check: all of them, or this run's files in the given periods (reference
    datasets: this run's snapshots). Every raw check is about one file's rows, so files that earlier runs
    ingested (and checked) need no second look."""
    if periods is None:
        return raw_files(settings, dataset)
    partitions = None if DATASETS[dataset].is_reference else [f"period={p}" for p in periods]
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
        tables[f"raw_{dataset}"] = (
            0 if files else Skip(f"no committed raw files of {dataset} in scope", True, "warning")
        )
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
    """One row per manifest file (this run's when scoped): manifest counts beside rows found in the lake.

    Row counts come from the Parquet footers, so no data page is read.
    """
    con.execute(
        f"create table manifest_in_scope as select * from {read_manifest(con, settings, run_files)} "
        + ("where run_id = ?" if this_run_only else ""),
        [run_id] if this_run_only else [],
    )
    pairs = con.execute("select ingest_seq, file_hash from manifest_in_scope").fetchall()
    stems = {file_stem(seq, sha): (seq, sha) for seq, sha in pairs}
    quarantine = settings.lake / "quarantine"
    files = [
        p for pattern in ("raw/*/*/*.parquet", "quarantine/*/*.parquet") for p in settings.lake.glob(pattern)
    ]
    files = [p for p in files if p.stem in stems]
    con.execute("create table lake_files (stem varchar, is_quarantine boolean, num_rows bigint)")
    if files:
        footers = con.execute(f"select file_name, num_rows from parquet_file_metadata({sql_list(files)})")
        rows = [(Path(name).stem, quarantine in Path(name).parents, n) for name, n in footers.fetchall()]
        con.executemany("insert into lake_files values (?, ?, ?)", rows)
    con.execute("create table manifest_stems (ingest_seq bigint, file_hash varchar, stem varchar)")
    con.executemany(
        "insert into manifest_stems values (?, ?, ?)",
        [(seq, sha, stem) for stem, (seq, sha) in stems.items()],
    )
    con.execute(
        """
        create table raw_file_accounting as
        with

        lake_rows as (
            select
                stem,
                coalesce(sum(num_rows) filter (where not is_quarantine), 0) as raw_rows,
                coalesce(sum(num_rows) filter (where is_quarantine), 0) as quarantine_rows,
            from lake_files
            group by stem
        ),

        final as (
            select
                m.source_file,
                m.dataset,
                m.status,
                m.ingest_seq,
                coalesce(m.rows_in, 0) as rows_in,
                coalesce(m.rows_accepted, 0) as rows_accepted,
                coalesce(m.rows_quarantined, 0) as rows_quarantined,
                coalesce(l.raw_rows, 0) as raw_rows,
                coalesce(l.quarantine_rows, 0) as quarantine_rows,
            from manifest_in_scope as m
            inner join manifest_stems as s
                on s.ingest_seq = m.ingest_seq and s.file_hash = m.file_hash
            left join lake_rows as l
                on l.stem = s.stem
        )

        select * from final
        """
    )
    return 0


def _partition_files(base: Path, periods: Sequence[str] | None) -> list[Path]:
    wanted = None if periods is None else {f"period={p}" for p in periods}
    return [p for p in sorted(base.glob("period=*/*.parquet")) if wanted is None or p.parent.name in wanted]


def _register_validated(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, periods: Sequence[str] | None
) -> int | Skip:
    """View `validated_<table>` over the table's partitions in scope, or why there is none."""
    base = validated_dir(settings, table)
    if not any(base.glob("period=*/*.parquet")):
        return Skip(f"not built: lake/validated/{table} has no partition yet", False, "warning")
    files = _partition_files(base, periods)
    if not files:
        return Skip(f"lake/validated/{table} has no partition in {list(periods or [])}", True, "warning")
    register_parquet(con, f"validated_{table}", files, {})
    return 0


def _run_models(
    con: duckdb.DuckDBPyConnection, names: Sequence[str], materialize: str = "table"
) -> int | Skip:
    """Build shared SQL models in order, or say which one is not written yet."""
    try:
        for name in names:
            run_model(con, name, materialize)
    except KeyError as exc:
        return Skip(f"not built: {exc.args[0]}", False, "warning")
    return 0


def _prepare_validated(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: Sequence[str] | None
) -> Tables:
    tables: Tables = {
        f"validated_{t}": _register_validated(con, settings, t, periods) for t in VALIDATED_TABLES
    }
    register_parquet(con, "raw_meters", raw_files(settings, "meters"), raw_columns("meters"))
    tables["int_meters__current"] = _run_models(con, ("stg_lake__meters", "int_meters__current"))
    tables["interval_energy_monthly"] = _prepare_interval_energy(con, tables)
    return tables


def _prepare_interval_energy(con: duckdb.DuckDBPyConnection, tables: Tables) -> int | Skip:
    """Energy per meter and month summed from the validated intervals, to compare with meter_monthly."""
    source = tables["validated_interval_reads"]
    if isinstance(source, Skip):
        return source
    con.execute(
        """
        create table interval_energy_monthly as
        select
            meter_id,
            period,
            sum(energy_kwh) as energy_kwh,
        from validated_interval_reads
        group by meter_id, period
        """
    )
    return 0


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
    for mart in MARTS:
        if mart in present:
            # Marts are small; a copy lets GX open the scratch file alone, read-only.
            con.execute(f"create table {mart} as select * from marts_file.main.{mart}")
            tables[mart] = 0
        else:
            tables[mart] = Skip(f"not built: {database.name} has no table {mart}", False, "critical")
    con.execute("detach marts_file")
    # int_network__current takes each node from the newest snapshot listing it: every network snapshot.
    register_parquet(con, "raw_network", raw_files(settings, "network"), raw_columns("network"))
    register_parquet(con, "raw_tariffs", _newest_snapshot_files(settings, "tariffs"), raw_columns("tariffs"))
    tables["int_network__current"] = _run_models(con, ("stg_lake__network", "int_network__current"))
    tables["tariff_bounds"] = _prepare_tariff_bounds(con, tables)
    tables["billing_reconciliation"] = _prepare_reconciliation(con, settings, tables, periods)
    return tables


def _prepare_tariff_bounds(con: duckdb.DuckDBPyConnection, tables: Tables) -> int | Skip:
    """Lowest and highest price of the newest tariffs snapshot in force during each period or the month
    before it (a bill of period P covers a reading period that ends in P and may start in P - 1)."""
    if not isinstance(tables.get("mart_kpi_monthly"), int):
        return Skip("not built: mart_kpi_monthly is missing", False, "warning")
    con.execute(
        """
        create table tariff_bounds as
        with

        tariffs as (
            select * from raw_tariffs
            where _snapshot_date = (select max(_snapshot_date) from raw_tariffs)
        ),

        periods as (
            select distinct
                period,
                strptime(period || '-01', '%Y-%m-%d')::date as month_start,
            from mart_kpi_monthly
        ),

        windows as (
            select
                period,
                (month_start - interval 1 month)::date as window_start,
                (month_start + interval 1 month - interval 1 day)::date as window_end,
            from periods
        ),

        final as (
            select
                w.period,
                min(t.price_vnd_per_kwh) as lowest_price_vnd_per_kwh,
                max(t.price_vnd_per_kwh) as highest_price_vnd_per_kwh,
            from windows as w
            left join tariffs as t
                on
                    t.valid_from <= w.window_end
                    and (t.valid_to is null or t.valid_to >= w.window_start)
            group by w.period
        )

        select * from final
        """
    )
    return 0


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
    wanted = {f"period={p}" for p in periods}
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


def _neighbour_periods(period: str) -> list[str]:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in (index - 1, index, index + 1)]


def _prepare_reconciliation(
    con: duckdb.DuckDBPyConnection, settings: Settings, tables: Tables, periods: Sequence[str] | None
) -> int | Skip:
    """Per customer: reading periods billed, and how many differ from metered TOTAL-register consumption.

    Billed = REGULAR lines of the latest export versions for one reading period (period_start..period_end);
    metered = validated register consumption of the pairs of reads whose midpoint falls in that period.
    Outside tolerance = differing by more than 2 kWh and more than 2 %, or no metered consumption at all.
    """
    if not isinstance(tables.get("mart_kpi_monthly"), int):
        return Skip("not built: mart_kpi_monthly is missing", False, "warning")
    wanted = _reconciliation_periods(con, periods)
    around = sorted({p for period in wanted for p in _neighbour_periods(period)})
    consumption = _register_validated(con, settings, "register_consumption", around)
    if isinstance(consumption, Skip):
        return consumption
    files = _bill_line_files(con, settings, wanted)
    register_parquet(con, "raw_bill_lines", files, raw_columns("bill_lines"))
    bills = _run_models(con, ("stg_lake__bill_lines",), materialize="view")
    if isinstance(bills, Skip):
        return bills
    set_periods(con, wanted)
    try:
        run_model(con, "int_bill_lines__current", materialize="view")
    except KeyError as exc:
        return Skip(f"not built: {exc.args[0]}", False, "warning")
    # per billing period, as each period's bill covers its own reading period
    con.execute(
        """
        create table billed as
        select customer_id, period_start, period_end, sum(kwh)::decimal(38,6) as billed_kwh
        from int_bill_lines__current
        where bill_type = 'REGULAR'
        group by customer_id, period, period_start, period_end
        """
    )
    con.execute(
        """
        create table billing_reconciliation as
        with

        billed_periods as (
            select * from billed
        ),

        consumption as (
            select
                customer_id,
                consumption_kwh,
                read_from + (read_to - read_from) / 2 as read_midpoint,
            from validated_register_consumption
            where register = 'TOTAL'
        ),

        matched as (
            select
                b.customer_id,
                b.period_start,
                b.period_end,
                b.billed_kwh,
                sum(c.consumption_kwh) as metered_kwh,
            from billed_periods as b
            left join consumption as c
                on
                    c.customer_id = b.customer_id
                    and c.read_midpoint >= b.period_start
                    and c.read_midpoint < b.period_end + interval 1 day
            group by all
        ),

        compared as (
            select
                *,
                metered_kwh is null
                or (
                    abs(billed_kwh - metered_kwh) > 2
                    and abs(billed_kwh - metered_kwh) > 0.02 * abs(metered_kwh)
                ) as is_outside,
            from matched
        ),

        final as (
            select
                customer_id,
                count(*) as reading_periods,
                count(*) filter (where is_outside) as periods_outside,
                max(abs(billed_kwh - coalesce(metered_kwh, 0))) as max_difference_kwh,
            from compared
            group by customer_id
        )

        select * from final
        """
    )
    return 0


# --------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Planned:
    """A declared check as GX will run it, with the number of rows (or columns) it looks at."""

    suite: Suite
    exp: Expectation
    gx_type: str
    gx_kwargs: dict[str, Any]
    rows_checked: int | None


def _validate(
    settings: Settings,
    scratch: Path,
    run_id: str,
    stage: str,
    suites: Sequence[Suite],
    tables: Tables,
) -> tuple[QualityReport, Any]:
    """Run every runnable suite as one GX validation of its table; record the rest as skipped."""
    gx = gx_duckdb.import_gx()
    context = gx_duckdb.new_context(docs_dir(settings, stage))
    report = QualityReport(run_id, stage)
    stamp = {"run_id": run_id, "stage": stage, "checked_at": datetime.now(UTC).replace(tzinfo=None)}
    datasource = gx_duckdb.add_duckdb_datasource(context, "scratch", scratch, settings)
    try:
        catalog_checks: dict[str, list[_Planned]] = {COLUMNS_TABLE: [], KEYS_TABLE: []}
        for suite in suites:
            table = tables.get(suite.table, Skip(f"no table {suite.table}", False, "critical"))
            if isinstance(table, Skip):
                whole = Expectation("suite_runs", {}, table.severity, suite.description)
                report.results.append(_row(stamp, suite, whole, 0, None, table.passed, table.reason))
                continue
            planned = []
            for exp in suite.expectations:
                missing = [t for t in exp.requires if not isinstance(tables.get(t), int)]
                if missing:
                    reason = "skipped, " + "; ".join(_skip_reason(tables.get(t), t) for t in missing)
                    report.results.append(_row(stamp, suite, exp, 0, None, False, reason))
                elif exp.type in CATALOG_QUERIES:
                    catalog, query, size = CATALOG_QUERIES[exp.type](suite, exp)
                    rows_query = {"unexpected_rows_query": query}
                    catalog_checks[catalog].append(
                        _Planned(suite, exp, ROWS_CHECK, rows_query, size or table)
                    )
                else:
                    planned.append(_Planned(suite, exp, exp.type, exp.kwargs, table))
            if planned:
                run = (gx, context, datasource, suite.name, suite.table, planned, stamp)
                report.results += _run_validation(*run)
        for catalog, checks in catalog_checks.items():
            if checks:
                run = (gx, context, datasource, f"{stage}.{catalog.strip('_')}", catalog, checks, stamp)
                report.results += _run_validation(*run)
    finally:
        gx_duckdb.close_datasource(datasource)
    return report, context


def _row(
    stamp: dict[str, Any],
    suite: Suite,
    exp: Expectation,
    rows_checked: int | None,
    rows_failed: int | None,
    passed: bool,
    note: str | None = None,
) -> dict[str, Any]:
    """A result row with etl.lake.QUALITY_COLUMNS."""
    return {
        "run_id": stamp["run_id"],
        "stage": stamp["stage"],
        "suite": suite.name,
        "check_name": exp.check_name,
        "description": exp.description if note is None else f"{exp.description} [{note}]",
        "severity": exp.severity,
        "rows_checked": rows_checked,
        "rows_failed": rows_failed,
        "passed": passed,
        "checked_at": stamp["checked_at"],
    }


def _skip_reason(value: Any, table: str) -> str:
    return value.reason if isinstance(value, Skip) else f"no table {table}"


def _gx_expectation(gx: Any, gx_type: str, kwargs: dict[str, Any], meta: dict[str, Any]) -> Any:
    """The GX expectation object for a declared check. Raises QualityError for an unknown type."""
    from great_expectations.expectations.registry import get_expectation_impl

    if gx_type == ROWS_CHECK:
        return gx.expectations.UnexpectedRowsExpectation(**kwargs, meta=meta)
    try:
        impl = get_expectation_impl(gx_type)
    except Exception as exc:  # GX raises its own lookup error types
        raise QualityError(f"unknown expectation type {gx_type!r}") from exc
    return impl(**kwargs, meta=meta)


def _types_query(suite: Suite, exp: Expectation) -> tuple[str, str, int | None]:
    """Rows of `_columns` where a declared column is missing or has another type (GX cannot read column
    types through duckdb-engine, whose inspector fails on SQLAlchemy 2.1)."""
    types: dict[str, str] = exp.kwargs["types"]
    values = ", ".join(f"('{name}', '{type_}')" for name, type_ in types.items())
    query = (
        "select e.column_name, e.expected_type, a.data_type as actual_type "
        f"from (values {values}) as e (column_name, expected_type) "
        f"left join {{batch}} as a on a.table_name = '{suite.table}' and a.column_name = e.column_name "
        "where a.data_type is distinct from e.expected_type"
    )
    return COLUMNS_TABLE, query, len(types)


def _keys_query(suite: Suite, exp: Expectation) -> tuple[str, str, int | None]:
    """Rows of `_repeated_keys` for one uniqueness check: each key that occurs more than once."""
    query = (
        f"select key, copies from {{batch}} where suite = '{suite.name}' and check_name = '{exp.check_name}'"
    )
    return KEYS_TABLE, query, None


# Declared checks answered from a catalog table: (catalog table, query, rows checked or None = table rows).
CATALOG_QUERIES: dict[str, Callable[[Suite, Expectation], tuple[str, str, int | None]]] = {
    TYPES_CHECK: _types_query,
    UNIQUE_CHECK: _keys_query,
}


def _run_validation(
    gx: Any,
    context: Any,
    datasource: Any,
    name: str,
    table: str,
    planned: Sequence[_Planned],
    stamp: dict[str, Any],
) -> list[dict[str, Any]]:
    """One GX validation of `table` with the planned checks; a result row per check."""
    from great_expectations.core.run_identifier import RunIdentifier

    asset = datasource.add_table_asset(name=table, table_name=table)
    batch = asset.add_batch_definition_whole_table(f"{table}-all")
    expectations = [
        _gx_expectation(gx, item.gx_type, item.gx_kwargs, _meta(index, item.exp))
        for index, item in enumerate(planned)
    ]
    # Given whole: GX re-serialises the stored suite on every add_expectation (quadratic in its size).
    gx_suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = gx.ValidationDefinition(name=name, data=batch, suite=gx_suite)
    run_id = RunIdentifier(run_name=stamp["run_id"], run_time=stamp["checked_at"])  # names the Data Docs page
    result = context.validation_definitions.add(definition).run(result_format=RESULT_FORMAT, run_id=run_id)
    rows = []
    for outcome in result.results:
        item = planned[int(outcome.expectation_config.meta["meterflow_index"])]
        rows_checked, rows_failed, note = _counts(outcome, item.rows_checked)
        rows.append(_row(stamp, item.suite, item.exp, rows_checked, rows_failed, bool(outcome.success), note))
    return rows


def _meta(index: int, exp: Expectation) -> dict[str, Any]:
    """What GX carries beside an expectation: its place in the plan, and what the Data Docs show."""
    return {"meterflow_index": index, "severity": exp.severity, "description": exp.description}


def _counts(outcome: Any, known_rows: int | None) -> tuple[int | None, int | None, str | None]:
    """Rows checked and failed from a GX result, or the error that kept GX from computing them."""
    info = outcome.exception_info or {}
    errors = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    raised = [e.get("exception_message") for e in errors if e.get("raised_exception")]
    if raised:
        return known_rows, None, f"error: {raised[0]}"
    res = outcome.result or {}
    if "unexpected_count" in res:
        return res.get("element_count", known_rows), res["unexpected_count"], None
    observed = res.get("observed_value")
    if outcome.expectation_config.type == "unexpected_rows_expectation":
        return known_rows, observed, None
    return known_rows, 0 if outcome.success else None, None if outcome.success else f"observed {observed}"
