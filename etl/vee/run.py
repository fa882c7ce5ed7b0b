"""VEE: validation, estimation and editing of meter readings, raw layer -> lake/validated.

The rules live in the SQL models (sql/staging/stg_lake__{interval,register}_reads.sql,
sql/intermediate/int_interval_reads__*.sql, int_register_reads__*.sql); docs/vee.md describes the
tables and the rule vocabulary. This module decides which local calendar months to rebuild, feeds the
models the raw partitions those months need, and writes `lake/validated/<table>/period=YYYY-MM/`.

Consecutive interval months are rebuilt together, in one pass, up to CHUNK_ROWS raw readings (a larger
month alone). The pass reads the months' raw partitions and the readings up to 8 days before and 1 day
after them (like-day sources, interpolation anchors); a gap that reaches further
out is bounded by the reading index (`validated_reading_index`: per meter and month, where the
accepted readings lie), taken from `validated/meter_monthly` for months not rebuilt and from raw for
months that are. Register reads are chained from the first month rebuilt; the register index
(`validated/register_index`: per meter, register and month, the chain's state at the month's end) of
the month before gives each meter's read before (a pair of reads may span any number of months).

A run returns the months it rebuilt, which the pipeline hands to the aggregates, and records them in
`lake/validated/_watermark.json` under the run's generation number, so that aggregates that missed a
run (a crash between the stages, or the stages run apart) still find them there.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from etl import current
from etl.duck import connect
from etl.lake import (
    copy_to_parquet,
    layer_watermark,
    manifest_raw_files,
    partition_file,
    partition_files,
    partition_name,
    partition_periods,
    periods_under,
    publish_file,
    raw_dir,
    raw_files,
    read_manifest,
    scratch_name,
    sql_list,
    sql_text,
    tmp_dir,
    validated_dir,
    write_json_atomic,
)
from etl.models import build, raw_columns, register_parquet, register_raw
from etl.periods import month_end, month_start, months_between, next_month
from etl.settings import Settings
from etl.timezone import month_bounds_utc

log = logging.getLogger(__name__)

INTERVAL_TABLES = ("interval_reads", "interval_rejects", "meter_monthly")
REGISTER_TABLES = ("register_consumption", "register_rejects")
TABLES = (*INTERVAL_TABLES, *REGISTER_TABLES, "sum_check")

# Where each meter's accepted readings lie, per channel and local month, as UTC instants (see
# int_interval_reads__indexed).
READING_INDEX_COLUMNS: dict[str, str] = {
    "meter_id": "VARCHAR",
    "channel": "VARCHAR",
    "period": "VARCHAR",
    "first_reading_start": "TIMESTAMP",
    "last_reading_start": "TIMESTAMP",
    "last_reading_minutes": "BIGINT",
}

# The state of each meter's register chain at the end of a month (see int_register_reads__indexed).
REGISTER_INDEX_COLUMNS: dict[str, str] = {
    "meter_id": "VARCHAR",
    "register": "VARCHAR",
    "period": "VARCHAR",
    "last_read_at": "TIMESTAMP",
    "last_index_value": "DECIMAL(18,6)",
    "last_read_type": "VARCHAR",
    "accepted_read_at": "TIMESTAMP",
    "accepted_index_value": "DECIMAL(18,6)",
    "accepted_read_type": "VARCHAR",
}

# Columns of the validated tables VEE reads back (enough for an empty view when no month has a file).
_LAKE_TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "interval_reads": {
        "meter_id": "VARCHAR",
        "channel": "VARCHAR",
        "interval_start": "TIMESTAMP",
        "interval_start_utc": "TIMESTAMP",
        "period": "VARCHAR",
        "interval_minutes": "BIGINT",
        "energy_kwh": "DECIMAL(38,12)",
        "quality": "VARCHAR",
    },
    "meter_monthly": {"period": "VARCHAR"} | READING_INDEX_COLUMNS,
    "register_consumption": {
        "meter_id": "VARCHAR",
        "register": "VARCHAR",
        "read_from": "TIMESTAMP",
        "read_to": "TIMESTAMP",
        "period": "VARCHAR",
        "consumption_kwh": "DECIMAL(38,12)",
    },
}

# Readings read around a month: like-day looks 7 days back, interpolation at most 4 intervals
# (4 hours) either way; a gap reaching past the margins is longer than 4 intervals.
MARGIN_BEFORE = timedelta(days=8)
MARGIN_AFTER = timedelta(days=1)

# Consecutive interval months are rebuilt together, in one pass, up to this many raw readings (with
# the margins, about 1 GB of memory at the peak); a larger month is rebuilt alone.
CHUNK_ROWS = 6_000_000

# The columns of int_meters__current VEE reads besides meter_id and the installation dates (a change to
# one of them changes a meter's every month; tests/test_vee_incremental.py holds this list to the models).
VEE_METER_COLUMNS = ("role", "customer_id", "multiplier", "max_kw", "register_digits")

# The models VEE writes out; `build` adds what they depend on. int_meters__current is built once per run
# (or read from its saved copy) and then given to every later build.
METERS = "int_meters__current"
INTERVAL_OUTPUTS = ("int_interval_reads__summed_monthly", "int_interval_reads__rejected")
REGISTER_OUTPUTS = (
    "int_register_reads__paired",
    "int_register_reads__rejected",
    "int_register_reads__indexed",
)
# The months of the register index, built over every meter before the chain is built range by range.
REGISTER_MONTHS = "int_register_reads__months"

# The register chain (deduplicated, checked, measured, indexed) is built one range of meters at a time, of
# about this many raw reads, with less memory and less time: the full company's 12.6 M reads took 72.6 s
# in one pass (build and sort for writing), 60.1-67.1 s in five ranges, measured back to back.
REGISTER_RANGE_ROWS = 3_000_000


@dataclass
class VeeReport:
    """What one VEE run rebuilt: the months and the rows written per validated table."""

    run_id: str
    periods_rebuilt: list[str]
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class _Plan:
    """Months to rebuild per family of tables, and the manifest sequence they bring VEE up to."""

    top_seq: int
    intervals: set[str]
    registers: set[str]
    sum_check: set[str]
    # whether validated_reading_index already holds the index of every month (full plans build it)
    index_ready: bool = False

    @property
    def periods(self) -> set[str]:
        return self.intervals | self.registers | self.sum_check


# -- the reading index ---------------------------------------------------------------------------


def ensure_reading_index(con: duckdb.DuckDBPyConnection) -> None:
    """Create an empty `validated_reading_index` unless the session already has one."""
    cols = ", ".join(f"{n} {t}" for n, t in READING_INDEX_COLUMNS.items())
    con.execute(f"create table if not exists validated_reading_index ({cols})")


# -- months --------------------------------------------------------------------------------------


# -- watermark -----------------------------------------------------------------------------------


def watermark_path(settings: Settings) -> Path:
    return layer_watermark(settings, "validated")


def _read_state(settings: Settings) -> dict[str, Any]:
    path = watermark_path(settings)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def read_watermark(settings: Settings) -> int | None:
    """The highest manifest ingest_seq VEE has processed, or None before the first run."""
    state = _read_state(settings)
    return int(state["ingest_seq"]) if state else None


def _write_watermark(settings: Settings, ingest_seq: int, run_id: str, periods: Iterable[str]) -> None:
    """Move the watermark to `ingest_seq` and record `periods` as rebuilt by this run.

    Each run that rebuilds months takes the next generation number; `rebuilt` keeps, per month, the
    generation that last rebuilt it. A later stage that remembers the generation it has consumed rebuilds
    the months of every newer generation, so months rebuilt by a run whose successor crashed are not lost.
    """
    state = _read_state(settings)
    generation = int(state.get("generation", 0)) + 1
    rebuilt = dict(state.get("rebuilt", {})) | dict.fromkeys(periods, generation)
    record = {
        "ingest_seq": ingest_seq,
        "run_id": run_id,
        "generation": generation,
        "rebuilt": dict(sorted(rebuilt.items())),
    }
    write_json_atomic(watermark_path(settings), record, settings, indent=2)


# -- planning ------------------------------------------------------------------------------------


def _new_manifest_rows(con: duckdb.DuckDBPyConnection, settings: Settings, since_seq: int) -> list[tuple]:
    manifest = read_manifest(con, settings)
    return con.execute(
        f"select dataset, partitions, ingest_seq, file_hash from {manifest} "
        "where status = 'INGESTED' and ingest_seq > ? order by ingest_seq",
        [since_seq],
    ).fetchall()


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    """The single value a one-row query returns."""
    row = con.execute(query).fetchone()
    assert row is not None, query
    return row[0]


def _top_seq(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    manifest = read_manifest(con, settings)
    return int(_scalar(con, f"select coalesce(max(ingest_seq), 0) from {manifest}"))


def _new_files(settings: Settings, rows: list[tuple], dataset: str) -> list[Path]:
    return manifest_raw_files(settings, rows).get(dataset, [])


def _register_lake_table(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    table: str,
    periods: Iterable[str],
    view: str | None = None,
) -> None:
    """Register `validated_<table>` (or `view`) over the lake's partitions of `periods` that exist."""
    base = validated_dir(settings, table)
    files = [partition_file(base, p) for p in sorted(periods)]
    columns = _LAKE_TABLE_COLUMNS[table]
    register_parquet(con, view or f"validated_{table}", [f for f in files if f.exists()], columns)


def _index_from_meter_monthly(con: duckdb.DuckDBPyConnection, settings: Settings, skip: set[str]) -> None:
    """Fill `validated_reading_index` from the lake's meter_monthly, except the months in `skip`."""
    ensure_reading_index(con)
    kept = periods_under(validated_dir(settings, "meter_monthly")) - skip
    _register_lake_table(con, settings, "meter_monthly", kept, view="old_meter_monthly")
    cols = ", ".join(READING_INDEX_COLUMNS)
    con.execute(
        f"insert into validated_reading_index select {cols} from old_meter_monthly "
        "where first_reading_start is not null"
    )


def _interval_touched(con: duckdb.DuckDBPyConnection, settings: Settings, rows: list[tuple]) -> set[str]:
    files = _new_files(settings, rows, "interval_reads")
    if not files:
        return set()
    register_parquet(con, "raw_interval_reads", files, raw_columns("interval_reads"))
    con.execute("drop table if exists validated_reading_index")
    _index_from_meter_monthly(con, settings, skip=set())
    build(con, ["int_interval_reads__touched"], given=[METERS])
    return {r[0] for r in con.execute("select period from int_interval_reads__touched").fetchall()}


def _register_touched(
    con: duckdb.DuckDBPyConnection, settings: Settings, rows: list[tuple], since_seq: int
) -> set[str]:
    files = _new_files(settings, rows, "register_reads")
    if not files:
        return set()
    first = min(partition_periods(f.parent.name for f in files))
    later = {partition_name(p) for p in periods_under(raw_dir(settings, "register_reads")) if p >= first}
    register_raw(con, settings, "register_reads", partitions=later)
    build(con, ["int_register_reads__touched"], params={"vee_since_seq": since_seq}, given=[METERS])
    return {r[0] for r in con.execute("select period from int_register_reads__touched").fetchall()}


def _index_spans(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The months from each meter's first to its last month with accepted readings, in the index.

    A meter's expected intervals may cross months that no file delivered; a reading VEE rejects (outside
    the installation) is not in the index, and an UNASSIGNED meter (in no snapshot) spans only its own
    months (its gaps end 31 days after a reading), so one stray timestamp cannot make every month
    between 1900 and 2099 a month to rebuild.
    """
    rows = con.execute("""
        with spans as (
            select
                strptime(min(period), '%Y-%m') as first_month,
                strptime(max(period), '%Y-%m') as last_month,
            from validated_reading_index
            where meter_id in (select meter_id from int_meters__current)
            group by meter_id
        )
        select distinct strftime(unnest(generate_series(first_month, last_month, interval 1 month)), '%Y-%m')
        from spans
        union
        -- an UNASSIGNED meter's gap of up to 31 days may cross the month after one with readings
        select strftime(strptime(period, '%Y-%m') + interval 1 month, '%Y-%m')
        from validated_reading_index as i
        where
            meter_id not in (select meter_id from int_meters__current)
            and last_reading_start + interval 31 day >= strptime(period, '%Y-%m') + interval 1 month
            and exists (
                select 1 from validated_reading_index as later
                where
                    later.meter_id = i.meter_id and later.channel = i.channel and later.period > i.period
                    and later.first_reading_start <= i.last_reading_start + interval 31 day
            )
    """).fetchall()
    return {r[0] for r in rows}


# Per family of readings: the raw dataset, the validated tables VEE writes for it, and the validated tables
# that say in which months a meter has rows (accepted or rejected).
FAMILIES = {
    "interval": ("interval_reads", INTERVAL_TABLES, ("meter_monthly", "interval_rejects")),
    "register": ("register_reads", REGISTER_TABLES, ("register_index", "register_rejects")),
}


def _months_with_data(settings: Settings, family: str) -> set[str]:
    """The months of a family with raw readings or validated rows."""
    dataset, tables, _ = FAMILIES[family]
    months = periods_under(raw_dir(settings, dataset))
    for table in tables:
        months |= periods_under(validated_dir(settings, table))
    return months


def _full_plan(con: duckdb.DuckDBPyConnection, settings: Settings, top_seq: int) -> _Plan:
    raw_intervals = periods_under(raw_dir(settings, "interval_reads"))
    # the reading index of every raw month: both the months to rebuild and, later, the gaps' bounds
    con.execute("drop table if exists validated_reading_index")
    ensure_reading_index(con)
    current.load(con, settings, METERS, stage="vee")
    if raw_intervals:
        _fresh_index(con, settings, raw_intervals)
    intervals = _months_with_data(settings, "interval") | _index_spans(con)
    registers = _months_with_data(settings, "register")
    sums = registers | periods_under(validated_dir(settings, "sum_check"))
    return _Plan(top_seq, intervals, registers, sums, index_ready=True)


def _plan(con: duckdb.DuckDBPyConnection, settings: Settings, since_seq: int | None, full: bool) -> _Plan:
    top_seq = _top_seq(con, settings)
    if full or since_seq is None:
        return _full_plan(con, settings, top_seq)
    rows = _new_manifest_rows(con, settings, since_seq)
    new_meters = any(r[0] == "meters" for r in rows)
    if new_meters:
        _meters_before(con, settings, since_seq)
    current.load(con, settings, METERS, stage="vee")
    intervals = _interval_touched(con, settings, rows)
    registers = _register_touched(con, settings, rows, since_seq)
    if new_meters:
        meter_intervals, meter_registers = _meters_touched(con, settings)
        intervals |= meter_intervals
        registers |= meter_registers
    # a register pair can start in the month before the one it is counted in
    with_register_data = periods_under(raw_dir(settings, "register_reads"))
    sums = registers | ((intervals | {next_month(p) for p in intervals}) & with_register_data)
    return _Plan(top_seq, intervals, registers, sums)


def _meters_before(con: duckdb.DuckDBPyConnection, settings: Settings, since_seq: int) -> None:
    """Table `vee_meters_before`: int_meters__current as the validated layer knows it, built from the raw
    meters snapshots up to `since_seq` (not from the saved copy, which a run that stopped half-way may
    have brought up to date already)."""
    known = [f for f in raw_files(settings, "meters") if int(f.stem.split("_", 1)[0]) <= since_seq]
    register_parquet(con, "raw_meters", known, raw_columns("meters"))
    build(con, [METERS])
    con.execute(f"create or replace temp table vee_meters_before as select * from {METERS}")
    con.execute(f"drop table {METERS}")
    register_raw(
        con, settings, "meters"
    )  # raw_meters over every snapshot again, as the rest of the run expects


def _meters_touched(con: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[set[str], set[str]]:
    """The interval and register months a new meters snapshot can change: those of the meters whose
    columns VEE reads changed between `vee_meters_before` and int_meters__current.

    A meter listed for the first time, or whose role, customer, multiplier, max_kw or register digits
    changed, changes every month from its first with validated rows (accepted or rejected) on. A meter
    whose installation dates alone changed screens its readings differently from the first changed date
    on; before that only the reasons of its readings rejected as outside the installation (which name
    both dates) change, so the months of those are rebuilt too. Each family (interval, register) rebuilds
    its months of data from the earliest such month of its own rows.
    """
    whole = " or ".join(f"b.{c} is distinct from a.{c}" for c in VEE_METER_COLUMNS)
    con.execute(f"""
        create or replace temp table vee_meter_changes as
        with compared as (
            select
                coalesce(a.meter_id, b.meter_id) as meter_id,
                a.meter_id is null or b.meter_id is null or {whole}
                    or (b.installed_on is distinct from a.installed_on
                        and (b.installed_on is null or a.installed_on is null)) as whole,
                case when b.installed_on is distinct from a.installed_on
                    then least(b.installed_on, a.installed_on) end as installed_change,
                case when b.removed_on is distinct from a.removed_on
                    then least(b.removed_on, a.removed_on) end as removed_change,
            from vee_meters_before as b
            full join {METERS} as a on a.meter_id = b.meter_id
        )
        select meter_id, whole, least(installed_change, removed_change) as changed_on,
        from compared
        where whole or installed_change is not null or removed_change is not null
    """)
    changed = int(_scalar(con, "select count(*) from vee_meter_changes"))
    if not changed:
        log.info("the new meters snapshot changes no meter VEE reads: no month to rebuild for it")
        return set(), set()
    # per family, the months of each changed meter's rows; `dated`: a reject whose reason names the dates
    selects = []
    for family, (_, _, by_meter) in FAMILIES.items():
        for table in by_meter:
            files = partition_files(validated_dir(settings, table))
            columns = {"meter_id": "VARCHAR", "period": "VARCHAR", "rule": "VARCHAR"}
            register_parquet(con, f"vee_old_{table}", files, columns)
            dated = "rule = 'OUTSIDE_INSTALLATION'" if table.endswith("_rejects") else "false"
            selects.append(
                f"select meter_id, period, '{family}' as family, {dated} as dated from vee_old_{table} "
                "where meter_id in (select meter_id from vee_meter_changes)"
            )
    con.execute(f"create or replace temp table vee_meter_months as {' union all '.join(selects)}")
    touched: dict[str, set[str]] = {}
    for family in FAMILIES:
        # a month reads the day after it (MARGIN_AFTER): a change on the 1st is seen by the month before
        first = _scalar(
            con,
            f"""
            select min(case
                when c.whole then m.period
                else greatest(m.period, strftime(c.changed_on - interval 1 day, '%Y-%m'))
            end)
            from vee_meter_changes as c
            join (
                select meter_id, min(period) as period from vee_meter_months where family = '{family}'
                group by meter_id
            ) as m using (meter_id)
        """,
        )
        dated_months = con.execute(
            "select distinct period from vee_meter_months where family = ? and dated", [family]
        ).fetchall()
        from_first = {p for p in _months_with_data(settings, family) if first is not None and p >= first}
        touched[family] = from_first | {r[0] for r in dated_months}
    intervals, registers = touched["interval"], touched["register"]
    log.info(
        "the new meters snapshot changes %d meters VEE reads: intervals of %d months, registers of %d",
        changed,
        len(intervals),
        len(registers),
    )
    return intervals, registers


def affected_periods(settings: Settings, since_seq: int) -> set[str]:
    """Months ('YYYY-MM') VEE must rebuild for the manifest rows above `since_seq`."""
    con = connect(settings)
    try:
        return _plan(con, settings, since_seq, full=False).periods
    finally:
        con.close()


# -- rebuilding ----------------------------------------------------------------------------------


def _fresh_index(con: duckdb.DuckDBPyConnection, settings: Settings, periods: set[str]) -> None:
    """Add the reading index of `periods`, straight from their raw partitions."""
    register_raw(con, settings, "interval_reads", partitions={partition_name(p) for p in periods})
    build(con, ["int_interval_reads__indexed"], given=[METERS])
    con.execute("insert into validated_reading_index select * from int_interval_reads__indexed")


def _write(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    table: str,
    period: str,
    query: str,
    params: list | None = None,
) -> int:
    dest = partition_file(validated_dir(settings, table), period)
    copy_to_parquet(con, query, dest, settings, params)
    return int(_scalar(con, f"select count(*) from read_parquet('{dest.as_posix()}')"))


def _write_by_period(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, periods: list[str], query: str
) -> int:
    """Write `query` (which has a `period` column) as one file per month of `periods`, in one pass.

    DuckDB splits the rows by period into a scratch folder; each month's file is then moved into place
    atomically, and a month without rows gets an empty file, as a month written alone would.
    """
    scratch = tmp_dir(settings) / scratch_name()
    written = 0
    try:
        con.execute(
            f"copy ({query}) to '{scratch.as_posix()}' (format parquet, compression zstd, "
            "partition_by (period), write_partition_columns true)"
        )
        for period in periods:
            parts = sorted((scratch / partition_name(period)).glob("*.parquet"))
            dest = partition_file(validated_dir(settings, table), period)
            if len(parts) == 1:
                publish_file(parts[0], dest)
            else:  # no rows (or, for a very large month, several files): one file, as the month alone
                files = sql_list(parts) if parts else None
                source = f"select * from read_parquet({files})" if files else f"{query} limit 0"
                copy_to_parquet(con, source, dest, settings)
            written += int(_scalar(con, f"select count(*) from read_parquet('{dest.as_posix()}')"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def _interval_chunks(settings: Settings, periods: list[str]) -> list[list[str]]:
    """`periods` in runs of consecutive months of at most CHUNK_ROWS raw readings (a month alone may
    hold more), each rebuilt in one pass."""
    files = raw_files(settings, "interval_reads")
    sizes: dict[str, int] = {}
    if files:
        con = duckdb.connect()
        try:
            rows = con.execute(
                f"select file_name, sum(num_rows) from parquet_file_metadata({sql_list(files)}) group by 1"
            ).fetchall()
        finally:
            con.close()
        for name, count in rows:
            period = partition_periods([Path(name).parent.name]).pop()
            sizes[period] = sizes.get(period, 0) + int(count)
    chunks: list[list[str]] = []
    total = 0
    for period in periods:
        size = sizes.get(period, 0)
        if chunks and next_month(chunks[-1][-1]) == period and total + size <= CHUNK_ROWS:
            chunks[-1].append(period)
            total += size
        else:
            chunks.append([period])
            total = size
    return chunks


def _rebuild_interval_months(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str], rows: dict[str, int]
) -> None:
    """Rebuild consecutive months `periods` in one pass over their raw readings and margins."""
    start, end = month_start(periods[0]), month_end(periods[-1])
    read_from, read_to = start - MARGIN_BEFORE, end + MARGIN_AFTER
    first, last = read_from.strftime("%Y-%m"), (read_to - timedelta(microseconds=1)).strftime("%Y-%m")
    register_raw(
        con, settings, "interval_reads", partitions={partition_name(p) for p in months_between(first, last)}
    )
    # the models compare UTC instants: the local months' bounds and the read margins as instants
    utc_start, utc_end = month_bounds_utc(start, end, settings.timezone)
    utc_read_from, utc_read_to = month_bounds_utc(read_from, read_to, settings.timezone)
    window = {
        "vee_from": utc_start,
        "vee_to": utc_end,
        "vee_read_from": utc_read_from,
        "vee_read_to": utc_read_to,
    }
    built = build(con, ["int_interval_reads__validated"], params=window, given=[METERS])
    rows["interval_reads"] += _write_by_period(
        con, settings, "interval_reads", periods, "select * from int_interval_reads__validated"
    )
    written = [partition_file(validated_dir(settings, "interval_reads"), p) for p in periods]
    # the monthly summary reads the rows just written rather than computing them again
    written_rows = f"select * from read_parquet({sql_list(written)})"
    con.execute(f"create or replace view int_interval_reads__validated as {written_rows}")
    build(con, INTERVAL_OUTPUTS, given=[METERS, *built])
    # both are small: computed once for the months, then written month by month in key order
    con.execute(
        "create or replace temp table vee_meter_monthly as "
        "select * from int_interval_reads__summed_monthly order by period, meter_id, channel"
    )
    con.execute(
        "create or replace temp table vee_interval_rejects as select * from int_interval_reads__rejected "
        "order by period, meter_id, channel, interval_start_utc, _ingest_seq, _line_no"
    )
    for period in periods:
        for table, temp in (
            ("meter_monthly", "vee_meter_monthly"),
            ("interval_rejects", "vee_interval_rejects"),
        ):
            rows[table] += _write(
                con, settings, table, period, f"select * from {temp} where period = ?", [period]
            )


def _rebuild_intervals(
    con: duckdb.DuckDBPyConnection, settings: Settings, plan: _Plan, rows: dict[str, int]
) -> None:
    if not plan.intervals:
        return
    if not plan.index_ready:
        con.execute("drop table if exists validated_reading_index")
        _index_from_meter_monthly(con, settings, skip=plan.intervals)
        _fresh_index(con, settings, plan.intervals)
    for periods in _interval_chunks(settings, sorted(plan.intervals)):
        log.info("VEE intervals %s to %s", periods[0], periods[-1])
        _rebuild_interval_months(con, settings, periods, rows)


def _register_window(settings: Settings, periods: set[str]) -> tuple[list[str], Path | None]:
    """The raw register months to chain for `periods`, and the register index file that precedes them.

    The chain starts at the first month rebuilt and runs to the last raw month (their index changes
    too); the index of the raw month before it gives each meter's read before. Without that file (a
    lake written before the index existed) the chain starts at the first raw month.
    """
    raw_months = sorted(periods_under(raw_dir(settings, "register_reads")))
    first = min(periods)
    before = [m for m in raw_months if m < first]
    if before:
        index = partition_file(validated_dir(settings, "register_index"), before[-1])
        if index.exists():
            return [m for m in raw_months if m >= first], index
        log.info("no register index for %s: register reads are chained from the first month", before[-1])
    return raw_months, None


def _meter_ranges(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Conditions on meter_id splitting `raw_register_reads` into ranges of consecutive meters of about
    REGISTER_RANGE_ROWS reads each, in meter order; one empty condition (every read) when it is small."""
    reads = int(_scalar(con, "select count(*) from raw_register_reads"))
    count = -(-reads // REGISTER_RANGE_ROWS)
    if count <= 1:
        return [""]
    fractions = [n / count for n in range(1, count)]
    found = _scalar(con, f"select quantile_disc(meter_id, {fractions}) from raw_register_reads")
    bounds = [sql_text(str(b)) for b in sorted(set(found or []) - {None})]
    if not bounds:
        return [""]
    ranges = [f"meter_id < {bounds[0]}"]
    ranges += [f"meter_id >= {low} and meter_id < {high}" for low, high in itertools.pairwise(bounds)]
    # a read without a meter goes with the last range: it sorts last in the tables written
    ranges.append(f"meter_id >= {bounds[-1]} or meter_id is null")
    return ranges


def _rebuild_registers(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: set[str], rows: dict[str, int]
) -> None:
    if not periods:
        return
    months, index = _register_window(settings, periods)
    log.info("VEE register chain over %d months (index: %s)", len(months), index)
    partitions = {partition_name(p) for p in months}

    def register_inputs(meters: str = "") -> None:
        """The raw reads and the index of the month before, of the meters meeting `meters` (all: "")."""
        register_raw(con, settings, "register_reads", partitions=partitions, where=meters)
        register_parquet(
            con, "validated_register_index", [index] if index else [], REGISTER_INDEX_COLUMNS, meters
        )

    register_inputs()
    build(con, [REGISTER_MONTHS])
    # each table sorted by month and key, then written month by month (a month's rows are adjacent
    # within each range of meters, so each write reads only its own parts)
    wanted = sql_list(sorted(periods))
    sorted_tables = (
        ("register_consumption", "int_register_reads__paired", wanted, "meter_id, register, read_to"),
        (
            "register_rejects",
            "int_register_reads__rejected",
            wanted,
            "meter_id, register, read_at, _ingest_seq, _line_no",
        ),
        ("register_index", "int_register_reads__indexed", sql_list(months), "meter_id, register"),
    )
    # a meter's chain depends on its own reads alone: built one range of meters at a time, in meter order,
    # each range's rows appended in key order, so that each month's rows stay in key order
    ranges = _meter_ranges(con)
    for number, meters in enumerate(ranges, start=1):
        if len(ranges) > 1:
            log.info("VEE register chain: meters range %d of %d (%s)", number, len(ranges), meters)
        register_inputs(meters)
        build(con, REGISTER_OUTPUTS, given=[METERS, REGISTER_MONTHS])
        for table, model, months_wanted, key in sorted_tables:
            query = (
                f"select * from {model} where period in (select unnest({months_wanted})) "
                f"order by period, {key}"
            )
            if number == 1:
                con.execute(f"create or replace temp table vee_{table} as {query}")
            else:
                con.execute(f"insert into vee_{table} {query}")
    if len(ranges) > 1:  # later steps read the raw reads and the index of every meter
        register_inputs()
    for period in sorted(periods):
        log.info("VEE registers %s", period)
        for table in REGISTER_TABLES:
            rows[table] += _write(
                con, settings, table, period, f"select * from vee_{table} where period = ?", [period]
            )
    for period in months:
        _write(
            con,
            settings,
            "register_index",
            period,
            "select * from vee_register_index where period = ?",
            [period],
        )


def _rebuild_sum_check(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: set[str], rows: dict[str, int]
) -> None:
    if not periods:
        return
    _register_lake_table(con, settings, "register_consumption", periods)
    # only meters with intervals between their two reads are compared: most months read no interval
    # file at all. Such intervals lie in the months from read_from's to read_to's, so meter_monthly is
    # read over those months only, not the whole history.
    first_read = _scalar(
        con, "select min(read_from) from validated_register_consumption where register = 'TOTAL'"
    )
    if first_read is None:
        earliest = None
    else:
        spanned = months_between(first_read.strftime("%Y-%m"), max(periods))
        kept = periods_under(validated_dir(settings, "meter_monthly")) & set(spanned)
        _register_lake_table(con, settings, "meter_monthly", kept)
        earliest = _scalar(
            con,
            """
            select min(c.read_from)
            from validated_register_consumption as c
            where c.register = 'TOTAL' and exists (
                select 1 from validated_meter_monthly as m
                where m.meter_id = c.meter_id
                and m.period between strftime(c.read_from, '%Y-%m') and c.period
            )
            """,
        )
    months = months_between(earliest.strftime("%Y-%m"), max(periods)) if earliest else []
    _register_lake_table(con, settings, "interval_reads", months)
    build(con, ["int_register_reads__sum_checked"])
    for period in sorted(periods):
        rows["sum_check"] += _write(
            con, settings, "sum_check", period,
            "select * from int_register_reads__sum_checked where period = ? order by meter_id, read_to",
            [period],
        )  # fmt: skip


def run_vee(settings: Settings, run_id: str, full: bool = False) -> VeeReport:
    """Bring lake/validated up to the manifest: rebuild the months new raw files touch (all with `full`).

    The report's `periods_rebuilt` is handed forward to the aggregates. The watermark, which also records
    those months under this run's generation, moves only after every month is written, so a crash means
    the next run redoes the same months. Raises duckdb.Error when a model fails.
    """
    con = connect(settings)
    try:
        since = read_watermark(settings)
        plan = _plan(con, settings, since, full)
        if not full and since is not None and plan.top_seq <= since:
            return VeeReport(run_id, [], dict.fromkeys(TABLES, 0))
        rows = dict.fromkeys(TABLES, 0)
        # the plan has built int_meters__current in this session
        _rebuild_intervals(con, settings, plan, rows)
        _rebuild_registers(con, settings, plan.registers, rows)
        _rebuild_sum_check(con, settings, plan.sum_check, rows)
        _write_watermark(settings, plan.top_seq, run_id, plan.periods)
    finally:
        con.close()
    log.info("VEE %s rebuilt %d months: %s", run_id, len(plan.periods), rows)
    return VeeReport(run_id, sorted(plan.periods), rows)
