"""Monthly aggregates behind the marts: raw bill lines and payments, validated energy -> lake/aggregates.

Each monthly model is rebuilt one period at a time into
`lake/aggregates/<model>/period=YYYY-MM/data.parquet`; the current plans, which are not monthly, go to
`lake/aggregates/int_plans__current/data.parquet`, and the operations marts' figures, rebuilt whole when
operations files arrive, to `lake/aggregates/<model>/data.parquet`. `lake/aggregates/_watermark.json`
holds the highest manifest `ingest_seq` processed and the newest VEE generation whose months were rebuilt
(VEE records in `lake/validated/_watermark.json` which generation last rebuilt each month); both move only
after every touched period is rebuilt, so a crash means the next run redoes the same periods. The
aggregates read the validated layer and never write to it, nor run VEE's code. Publishing
(etl/marts/publish.py) reads only these files.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from etl import current
from etl.duck import connect
from etl.lake import (
    aggregates_dir,
    copy_to_parquet,
    layer_watermark,
    manifest_raw_files,
    partition_file,
    partition_files,
    partition_name,
    partition_periods,
    periods_under,
    raw_files,
    read_manifest,
    sql_list,
    validated_dir,
    write_json_atomic,
)
from etl.marts import operations
from etl.models import build as build_models
from etl.models import register_parquet, register_raw
from etl.settings import Settings

log = logging.getLogger(__name__)

# validated/meter_monthly as VEE writes it (docs/architecture.md, "Interfaces between the stages").
METER_MONTHLY_COLUMNS: dict[str, str] = {
    "period": "VARCHAR",
    "meter_id": "VARCHAR",
    "channel": "VARCHAR",
    "expected_intervals": "BIGINT",
    "actual_intervals": "BIGINT",
    "upstream_estimated_intervals": "BIGINT",
    "edited_intervals": "BIGINT",
    "estimated_intervals": "BIGINT",
    "missing_intervals": "BIGINT",
    "recorded_kwh": "DECIMAL(38,6)",
    "delivered_kwh": "DECIMAL(38,6)",
    "energy_kwh": "DECIMAL(38,12)",
    "estimated_energy_kwh": "DECIMAL(38,12)",
}

# The reference tables every period's aggregates join; int_meters__current is built from the raw meters
# snapshots as VEE builds it, so the marts read the meters the way VEE does.
CURRENT_MODELS = (
    "int_customers__current",
    "int_network__current",
    "int_plans__current",
    "int_meters__current",
)
PLANS_AGGREGATE = "int_plans__current"
PERIOD_WIDE_REFERENCE = ("customers", "network", "meters")
PLANS_COLUMNS: dict[str, str] = {
    "plan_year": "BIGINT",
    "region_code": "VARCHAR",
    "kpi": "VARCHAR",
    "target": "DECIMAL(18,6)",
    "snapshot_date": "DATE",
}

# The operations marts' figures (CONTRACT.md §9) and their columns. They are rebuilt whole in a run that
# brings operations files: a request's backlog and the year-to-date figures run on over every later month,
# so one re-delivered request can touch them all, and the whole operations history is small (about 0.7
# million requests and 0.1 million inspections for the full company over 21 months). The current state
# they are computed from is kept in the lake and merged with the new raw files only (etl/marts/operations.py).
OPERATIONS_DATASETS = ("service_requests", "inspections")
OPERATIONS_AGGREGATES: dict[str, dict[str, str]] = {
    "int_service__monthly": {
        "period": "VARCHAR",
        "region_code": "VARCHAR",
        "requests_received": "BIGINT",
        "requests_resolved": "BIGINT",
        "resolved_on_time": "BIGINT",
        "on_time_pct": "DOUBLE",
        "backlog_end": "BIGINT",
        "overdue_end": "BIGINT",
        "escalated": "BIGINT",
        "requests_received_ytd": "BIGINT",
        "on_time_ytd_pct": "DOUBLE",
    },
    "int_inspections__monthly": {
        "period": "VARCHAR",
        "region_code": "VARCHAR",
        "inspections": "BIGINT",
        "violations": "BIGINT",
        "hit_rate_pct": "DOUBLE",
        "recovered_kwh": "DECIMAL(38,6)",
        "recovered_vnd": "DECIMAL(38,6)",
        "inspections_ytd": "BIGINT",
        "violations_ytd": "BIGINT",
        "recovered_vnd_ytd": "DECIMAL(38,6)",
    },
    "int_inspections__customers": {
        "inspection_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "inspected_on": "DATE",
        "period": "VARCHAR",
        "result": "VARCHAR",
        "violation_type": "VARCHAR",
    },
    "int_service_mix__monthly": {
        "period": "VARCHAR",
        "request_type": "VARCHAR",
        "channel": "VARCHAR",
        "requests_received": "BIGINT",
        "requests_resolved": "BIGINT",
        "resolved_on_time": "BIGINT",
    },
}

# The monthly aggregates and their columns, as the SQL models produce them (a test holds the two equal);
# publish uses the columns when an aggregate has no partition yet.
MONTHLY_AGGREGATES: dict[str, dict[str, str]] = {
    "int_sales__monthly": {
        "period": "VARCHAR",
        "region_code": "VARCHAR",
        "customer_class": "VARCHAR",
        "tariff_code": "VARCHAR",
        "kwh_sold": "DECIMAL(38,6)",
        "revenue_vnd": "DECIMAL(38,6)",
        "vat_vnd": "DECIMAL(38,6)",
        "adjustment_kwh": "DECIMAL(38,6)",
        "adjustment_vnd": "DECIMAL(38,6)",
        "customers_billed": "BIGINT",
        "bills": "BIGINT",
        "bill_lines": "BIGINT",
    },
    "int_cashless__monthly": {
        "period": "VARCHAR",
        "region_code": "VARCHAR",
        "paying_customers": "BIGINT",
        "cashless_customers": "BIGINT",
        "payments": "BIGINT",
        "paid_amount_vnd": "DECIMAL(38,6)",
        "cashless_amount_vnd": "DECIMAL(38,6)",
    },
    "int_energy_received__monthly": {
        "period": "VARCHAR",
        "region_code": "VARCHAR",
        "kwh_received": "DECIMAL(38,12)",
        "estimated_kwh": "DECIMAL(38,12)",
        "missing_intervals": "BIGINT",
        "meters": "BIGINT",
    },
    "int_energy_balance__monthly": {
        "period": "VARCHAR",
        "node_id": "VARCHAR",
        "node_type": "VARCHAR",
        "region_code": "VARCHAR",
        "parent_id": "VARCHAR",
        "kwh_in": "DECIMAL(38,12)",
        "estimated_kwh": "DECIMAL(38,12)",
        "kwh_billed": "DECIMAL(38,6)",
        "customers_billed": "BIGINT",
        "meters": "BIGINT",
        "missing_intervals": "BIGINT",
    },
    "int_meter_channels__monthly": {
        "period": "VARCHAR",
        "meter_id": "VARCHAR",
        "channel": "VARCHAR",
        "role": "VARCHAR",
        "unit": "VARCHAR",
        "expected_intervals": "BIGINT",
        "actual_intervals": "BIGINT",
        "upstream_estimated_intervals": "BIGINT",
        "estimated_intervals": "BIGINT",
        "missing_intervals": "BIGINT",
        "recorded_qty": "DECIMAL(38,6)",
        "validated_qty": "DECIMAL(38,12)",
        "edited_intervals": "BIGINT",
        "estimated_qty": "DECIMAL(38,12)",
    },
    "int_customer_billed__monthly": {
        "period": "VARCHAR",
        "customer_id": "VARCHAR",
        "kwh_billed": "DECIMAL(38,6)",
        "kwh_adjusted": "DECIMAL(38,6)",
    },
    "int_energy_in__daily": {
        "period": "VARCHAR",
        "node_id": "VARCHAR",
        "day": "DATE",
        "kwh_in": "DECIMAL(38,12)",
        "estimated_kwh": "DECIMAL(38,12)",
        "missing_intervals": "BIGINT",
    },
}

# The calendar-month consumption of every customer (docs/loss_hunting.md). The months are built a calendar
# quarter per pass, over the reading periods that end from the month before the quarter to CALENDAR_AHEAD
# months after it and the daily DT energy from CALENDAR_AHEAD months before it to CALENDAR_AHEAD after: a
# DT's consumed share is taken over what the pass reads, so a month's sources are those of its quarter
# whichever run builds it, and new data in a month rebuilds every quarter whose pass reads it. Built after
# the monthly aggregates, whose daily energy it reads back.
CALENDAR_AHEAD = 3
CALENDAR_AGGREGATES: dict[str, dict[str, str]] = {
    "int_consumption__calendar_monthly": {
        "period": "VARCHAR",
        "customer_id": "VARCHAR",
        "dt_id": "VARCHAR",
        "feeder_id": "VARCHAR",
        "region_code": "VARCHAR",
        "customer_class": "VARCHAR",
        "kwh_calendar": "DECIMAL(38,6)",
        "profile": "VARCHAR",
        "reading_periods": "BIGINT",
        "is_covered": "BOOLEAN",
        "kwh_metered_read": "DECIMAL(38,12)",
        "tou_gap_kwh": "DECIMAL(38,12)",
        "reading_tolerance_kwh": "DECIMAL(38,6)",
        "disconnected_on": "DATE",
    },
}
# The customer-months with a revenue-protection signal on that mart_inspection_candidates lists
# (docs/loss_hunting.md). A month's signals read every calendar month before it (the customer's own
# reference) and its DT's scores over the three months before, so they are rebuilt from the first month whose
# calendar or bills a build rebuilds through the newest; publishing reads them instead of recomputing
# every month's signals from the whole calendar history.
SIGNAL_AGGREGATES: dict[str, dict[str, str]] = {
    "int_customer_signals__monthly": {
        "period": "VARCHAR",
        "customer_id": "VARCHAR",
        "dt_id": "VARCHAR",
        "feeder_id": "VARCHAR",
        "region_code": "VARCHAR",
        "customer_class": "VARCHAR",
        "kwh_calendar": "DECIMAL(38,6)",
        "own_reference_kwh": "DECIMAL(38,6)",
        "peer_ratio": "DOUBLE",
        "kwh_metered_read": "DECIMAL(38,12)",
        "tou_gap_kwh": "DECIMAL(38,12)",
        "kwh_billed": "DECIMAL(38,6)",
        "dt_score_pts": "DOUBLE",
        "drop_vs_history": "BOOLEAN",
        "drop_with_dt_loss": "BOOLEAN",
        "near_zero": "BOOLEAN",
        "after_disconnection": "BOOLEAN",
        "tou_mismatch": "BOOLEAN",
        "billed_below_metered": "BOOLEAN",
    },
}
# the aggregates the signals read, over every period
SIGNAL_SOURCES = (
    "int_consumption__calendar_monthly",
    "int_energy_balance__monthly",
    "int_customer_billed__monthly",
)
# validated/register_consumption as the calendar spreads read it (docs/vee.md)
REGISTER_CONSUMPTION_COLUMNS: dict[str, str] = {
    "meter_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "register": "VARCHAR",
    "read_from": "TIMESTAMP",
    "read_to": "TIMESTAMP",
    "period": "VARCHAR",
    "consumption_kwh": "DECIMAL(38,12)",
    "read_type_from": "VARCHAR",
    "read_type_to": "VARCHAR",
}
# validated/interval_reads as the daily DT energy reads it
INTERVAL_READS_COLUMNS: dict[str, str] = {
    "meter_id": "VARCHAR",
    "channel": "VARCHAR",
    "interval_start": "TIMESTAMP",
    "period": "VARCHAR",
    "energy_kwh": "DECIMAL(38,12)",
    "quality": "VARCHAR",
}

PERIODIC_DATASETS = ("bill_lines", "payments")

# A build takes this many periods in one pass (a close touches two or three). A full build goes through
# history this many months at a time: one pass over every month held all bill lines in memory at once
# (2.5 GB at size 0.1, against 0.7 GB three at a time) and was no faster.
PERIODS_PER_PASS = 3


@dataclass
class MartsReport:
    """What one build did: the periods whose aggregates were rebuilt and the rows written per model."""

    run_id: str
    periods_rebuilt: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    watermark: int | None = None


def watermark_path(settings: Settings) -> Path:
    return layer_watermark(settings, "aggregates")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def read_watermark(settings: Settings) -> int:
    """The highest manifest ingest_seq the aggregates have processed (0 before the first build)."""
    return int(_read_json(watermark_path(settings)).get("ingest_seq", 0))


def read_vee_generation(settings: Settings) -> int:
    """The newest VEE generation whose rebuilt months the aggregates have rebuilt too (0 before any)."""
    return int(_read_json(watermark_path(settings)).get("vee_generation", 0))


def vee_rebuilt(settings: Settings, after: int) -> tuple[int, set[str]]:
    """VEE's newest generation and the months its generations after `after` rebuilt.

    Read from `validated/_watermark.json`, VEE's output for the stages after it (docs/architecture.md,
    "Interfaces between the stages"); a lake VEE has not run on has generation 0 and no month.
    """
    state = _read_json(layer_watermark(settings, "validated"))
    rebuilt: dict[str, int] = state.get("rebuilt", {})
    return int(state.get("generation", 0)), {p for p, g in rebuilt.items() if g > after}


def _write_watermark(
    settings: Settings, ingest_seq: int, vee_generation: int, run_id: str, periods: list[str]
) -> None:
    record = {
        "ingest_seq": ingest_seq,
        "vee_generation": vee_generation,
        "run_id": run_id,
        "periods_rebuilt": periods,
    }
    write_json_atomic(watermark_path(settings), record, settings, indent=2)


def partition_path(settings: Settings, model: str, period: str) -> Path:
    return partition_file(aggregates_dir(settings, model), period)


def _latest_seq(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    row = con.execute(f"select coalesce(max(ingest_seq), 0) from {read_manifest(con, settings)}").fetchone()
    return int(row[0]) if row else 0


def known_periods(settings: Settings) -> set[str]:
    """Every period with raw bill lines or payments, validated meter months, or an aggregate part."""
    periods = partition_periods(f.parent.name for d in PERIODIC_DATASETS for f in raw_files(settings, d))
    periods |= periods_under(validated_dir(settings, "meter_monthly"))
    for model in MONTHLY_AGGREGATES | CALENDAR_AGGREGATES:
        periods |= periods_under(aggregates_dir(settings, model))
    return periods


def shift_period(period: str, months: int) -> str:
    """'YYYY-MM' moved by `months` (negative: back)."""
    index = int(period[:4]) * 12 + int(period[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def quarter_months(period: str) -> list[str]:
    """The three months of the calendar quarter of `period`."""
    first = f"{period[:4]}-{(int(period[5:7]) - 1) // 3 * 3 + 1:02d}"
    return [shift_period(first, k) for k in range(3)]


def calendar_passes(periods: Iterable[str], known: set[str]) -> list[list[str]]:
    """The calendar months to rebuild when `periods` are, one quarter per pass: every quarter whose pass
    reads one of `periods` (those within CALENDAR_AHEAD months of it), each with its months that hold data."""
    held = known | set(periods)
    near = {shift_period(p, k) for p in periods for k in range(-CALENDAR_AHEAD, CALENDAR_AHEAD + 1)}
    quarters = sorted({quarter_months(m)[0] for m in near & held})
    return [[m for m in quarter_months(q) if m in held] for q in quarters]


def signal_periods(rebuilt: Iterable[str], known: set[str], kept: set[str]) -> list[str]:
    """The months whose signals to rebuild when the calendar or bills of `rebuilt` are: every month from the
    first of them on, and every `known` month whose signals are not `kept` (a lake built before they were)."""
    rebuilt = set(rebuilt)
    after = {p for p in known | rebuilt if p >= min(rebuilt)} if rebuilt else set()
    return sorted(after | (known - kept))


def kept_signal_periods(settings: Settings) -> set[str]:
    """The months whose signals the aggregates hold (a month without any has an empty part)."""
    return {p for model in SIGNAL_AGGREGATES for p in periods_under(aggregates_dir(settings, model))}


# The key index: per dataset, every (key, period) pair of the raw layer, so that finding the partitions
# that share keys with some periods reads the index instead of every raw partition. Payment ids are kept
# as 64-bit hashes: a collision only adds a partition to read, never drops one.
KEY_INDEX: dict[str, tuple[str, str, str]] = {
    "bill_lines": ("export_id", "billing_period", "VARCHAR"),
    "payments": ("hash(payment_id)", "strftime(paid_at, '%Y-%m')", "UBIGINT"),
}


# a key index of more files than this is merged into one (a refresh adds one file per dataset)
KEY_INDEX_FILES = 32


def key_index_dir(settings: Settings, dataset: str) -> Path:
    """The dataset's key index: one Parquet file per refresh, named after the ingest_seq it reaches."""
    return aggregates_dir(settings, "_keys") / dataset


def key_index(settings: Settings, dataset: str) -> str:
    """A SQL relation over every (key, period) of the dataset's key index (a pair may repeat)."""
    return f"read_parquet('{(key_index_dir(settings, dataset) / '*.parquet').as_posix()}')"


def _key_index_state_path(settings: Settings) -> Path:
    return aggregates_dir(settings, "_keys") / "_state.json"


def _key_index_seq(settings: Settings) -> int | None:
    """The manifest ingest_seq the key index covers; None when there is no whole index to extend."""
    state = _key_index_state_path(settings)
    whole = all(any(key_index_dir(settings, d).glob("*.parquet")) for d in PERIODIC_DATASETS)
    if not state.exists() or not whole:
        return None
    return int(json.loads(state.read_text(encoding="utf-8"))["ingest_seq"])


def _manifest_rows(
    con: duckdb.DuckDBPyConnection, settings: Settings, above: int, upto: int
) -> list[tuple[str, list[str], int, str]]:
    """Ingested manifest rows with above < ingest_seq <= upto: dataset, partitions, ingest_seq, file_hash."""
    rows = con.execute(
        f"""
        select dataset, coalesce(partitions, []), ingest_seq, file_hash
        from {read_manifest(con, settings)}
        where ingest_seq > ? and ingest_seq <= ? and status = 'INGESTED'
        order by ingest_seq
        """,
        [above, upto],
    ).fetchall()
    return [(str(d), list(p), int(s), str(h)) for d, p, s, h in rows]


def _index_select(dataset: str, files: list[Path]) -> str:
    key, period, _type = KEY_INDEX[dataset]
    return (
        f"select distinct {key} as key, {period} as period "
        f"from read_parquet({sql_list(files)}, union_by_name = true)"
    )


def refresh_key_index(
    con: duckdb.DuckDBPyConnection, settings: Settings, latest: int, rebuild: bool = False
) -> None:
    """Bring the key index up to manifest ingest_seq `latest`: add a file of the new raw files' keys, or,
    when there is no index yet or `rebuild`, write it anew from every raw file. A refresh writes only the
    new keys, so a close costs the same after any length of history. Adding a file twice changes nothing,
    so a crash between writing an index file and its state only redoes the same work.
    """
    since = None if rebuild else _key_index_seq(settings)
    if since is not None and since >= latest:
        return
    if since is None:
        shutil.rmtree(aggregates_dir(settings, "_keys"), ignore_errors=True)
        files = {d: raw_files(settings, d) for d in PERIODIC_DATASETS}
    else:
        rows = _manifest_rows(con, settings, since, latest)
        files = manifest_raw_files(settings, [r for r in rows if r[0] in PERIODIC_DATASETS])
    for dataset in PERIODIC_DATASETS:
        new = files.get(dataset, [])
        if since is not None and not new:
            continue
        index = key_index_dir(settings, dataset)
        if new:
            query = f"select * from ({_index_select(dataset, new)}) order by all"
        else:  # an index with no key yet: an empty file keeps its columns
            query = f"select null::{KEY_INDEX[dataset][2]} as key, null::varchar as period where false"
        copy_to_parquet(con, query, index / f"{latest:012d}.parquet", settings)
        older = sorted(index.glob("*.parquet"))[:-1]
        if len(older) >= KEY_INDEX_FILES:
            # merged into one file named as the newest; the others go once it is in place
            merged = f"select distinct * from {key_index(settings, dataset)} order by all"
            copy_to_parquet(con, merged, index / f"{latest:012d}.parquet", settings)
            for path in older:
                path.unlink()
    write_json_atomic(_key_index_state_path(settings), {"ingest_seq": latest}, settings, indent=2)


def _periods_sharing(
    con: duckdb.DuckDBPyConnection, settings: Settings, dataset: str, new: list[Path]
) -> set[str]:
    """Periods holding rows that the new files may replace: lines of the same exports, the same payments."""
    if not new:
        return set()
    rows = con.execute(
        f"""
        select distinct period from {key_index(settings, dataset)}
        where key in (select key from ({_index_select(dataset, new)}))
        """
    ).fetchall()
    return {r[0] for r in rows}


def source_periods(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str]
) -> dict[str, set[str]]:
    """Per dataset, the raw partitions that building `periods` reads: theirs and those sharing a key."""
    out: dict[str, set[str]] = {}
    for dataset in PERIODIC_DATASETS:
        index = key_index(settings, dataset)
        rows = con.execute(
            f"""
            with wanted as (select distinct key from {index} where period in (select unnest(?::varchar[])))
            select distinct period from {index} where key in (select key from wanted)
            """,
            [periods],
        ).fetchall()
        out[dataset] = {r[0] for r in rows} | set(periods)
    return out


def affected_periods(settings: Settings, since_seq: int) -> set[str]:
    """Periods whose aggregates the manifest rows above `since_seq` touch.

    A new customers, network or meters snapshot touches every period (it can move a customer to another
    region or a meter to another node; tariffs feed no aggregate and plans are rewritten on every build).
    New bill lines touch their periods and every period holding lines of the same export_ids; new payments
    their months and every month holding the same payment_ids (both looked up in the key index, which this
    brings up to date first). Readings touch nothing here: the months VEE rebuilt from them come from VEE
    (`vee_rebuilt`, and `build`'s `vee_periods`). Rejected files touch nothing.
    """
    con = connect(settings)
    try:
        latest = _latest_seq(con, settings)
        refresh_key_index(con, settings, latest)
        rows = _manifest_rows(con, settings, since_seq, latest)
        if any(r[0] in PERIOD_WIDE_REFERENCE for r in rows):
            return known_periods(settings)
        periodic = [r for r in rows if r[0] in PERIODIC_DATASETS]
        touched = partition_periods(p for r in periodic for p in r[1])
        new = manifest_raw_files(settings, periodic)
        for dataset in PERIODIC_DATASETS:
            touched |= _periods_sharing(con, settings, dataset, new.get(dataset, []))
    finally:
        con.close()
    return touched


def register_sources(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Register the reference snapshots the aggregates read."""
    for dataset in ("customers", "network", "plans", "meters"):
        register_raw(con, settings, dataset)


def register_period_sources(
    con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str], read: dict[str, set[str]]
) -> None:
    """Point raw bill lines and payments at the partitions `read`, and validated meter months at `periods`."""
    for dataset in PERIODIC_DATASETS:
        register_raw(con, settings, dataset, [partition_name(p) for p in sorted(read[dataset])])
    base = validated_dir(settings, "meter_monthly")
    months = [partition_file(base, p) for p in periods]
    register_parquet(con, "validated_meter_monthly", [m for m in months if m.exists()], METER_MONTHLY_COLUMNS)
    reads = [partition_file(validated_dir(settings, "interval_reads"), p) for p in periods]
    register_parquet(
        con, "validated_interval_reads", [r for r in reads if r.exists()], INTERVAL_READS_COLUMNS
    )


def register_calendar_sources(con: duckdb.DuckDBPyConnection, settings: Settings, quarter: list[str]) -> None:
    """Point the calendar spreads of the months of a `quarter` at the reading periods ending from the month
    before it to CALENDAR_AHEAD months after it, the daily DT energy from CALENDAR_AHEAD months before it to
    CALENDAR_AHEAD after, and the validated meter months of `quarter`."""
    first = quarter_months(quarter[0])[0]
    span = [shift_period(first, k) for k in range(-CALENDAR_AHEAD, 3 + CALENDAR_AHEAD)]
    # from the month before: the reading periods that share days with those of the first month
    since = shift_period(first, -1)
    pairs = [partition_file(validated_dir(settings, "register_consumption"), p) for p in span if p >= since]
    register_parquet(
        con, "validated_register_consumption", [f for f in pairs if f.exists()], REGISTER_CONSUMPTION_COLUMNS
    )
    daily = [partition_path(settings, "int_energy_in__daily", p) for p in span]
    model = "int_energy_in__daily"
    register_parquet(con, f"aggregates_{model}", [f for f in daily if f.exists()], MONTHLY_AGGREGATES[model])
    months = [partition_file(validated_dir(settings, "meter_monthly"), p) for p in quarter]
    register_parquet(con, "validated_meter_monthly", [m for m in months if m.exists()], METER_MONTHLY_COLUMNS)


def register_signal_sources(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Point `aggregates_<model>` at every period of the aggregates the signals read."""
    for model in SIGNAL_SOURCES:
        parts = partition_files(aggregates_dir(settings, model))
        register_parquet(con, f"aggregates_{model}", parts, (MONTHLY_AGGREGATES | CALENDAR_AGGREGATES)[model])


def prepare(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Build the current reference tables, those kept between runs from their saved copies when current
    (etl.current; the aggregates save the customers and the network, VEE the meters), the others over the
    registered sources; returns the models built."""
    for model in CURRENT_MODELS:
        if model in current.SAVED_MODELS:
            current.load(con, settings, model, stage="aggregates")
    return [*current.SAVED_MODELS, *build_models(con, CURRENT_MODELS, given=current.SAVED_MODELS)]


def build_periods(con: duckdb.DuckDBPyConnection, periods: list[str], prepared: Iterable[str]) -> None:
    """Build every monthly aggregate of `periods` in one pass, over the `prepared` reference tables."""
    build_models(con, MONTHLY_AGGREGATES, params={"build_periods": periods}, given=prepared)


def build_calendar(con: duckdb.DuckDBPyConnection, periods: list[str], prepared: Iterable[str]) -> None:
    """Build the calendar-month consumption of `periods` over the `prepared` reference tables."""
    build_models(con, CALENDAR_AGGREGATES, params={"calendar_periods": periods}, given=prepared)


def build_signals(con: duckdb.DuckDBPyConnection, periods: list[str]) -> None:
    """Build the customer signals of `periods` over the registered aggregates of every period."""
    build_models(con, SIGNAL_AGGREGATES, params={"signal_periods": periods})


def _write_partition(
    con: duckdb.DuckDBPyConnection, settings: Settings, model: str, period: str, keep_empty: bool = False
) -> int:
    """Write one aggregate's period from the model's table; a period left with no rows loses its partition,
    unless `keep_empty` (then an empty part records that the period was built)."""
    dest = partition_path(settings, model, period)
    row = con.execute(f"select count(*) from {model} where period = ?", [period]).fetchone()
    count = int(row[0]) if row else 0
    if count or keep_empty:
        copy_to_parquet(con, f"select * from {model} where period = ? order by all", dest, settings, [period])
    elif dest.parent.exists():
        shutil.rmtree(dest.parent)
    return count


def _write_signals(settings: Settings, periods: list[str]) -> dict[str, int]:
    """Build and write the customer signals of `periods` on a connection of their own: they read every
    period's calendar, which at full size fits the memory limit only without the passes' tables beside it."""
    con = connect(settings)
    try:
        register_signal_sources(con, settings)
        build_signals(con, periods)
        rows = dict.fromkeys(SIGNAL_AGGREGATES, 0)
        for period in periods:
            for model in SIGNAL_AGGREGATES:
                rows[model] += _write_partition(con, settings, model, period, keep_empty=True)
    finally:
        con.close()
    return rows


def _write_plans(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    copy_to_parquet(
        con,
        f"select * from {PLANS_AGGREGATE} order by all",
        aggregates_dir(settings, PLANS_AGGREGATE) / "data.parquet",
        settings,
    )
    row = con.execute(f"select count(*) from {PLANS_AGGREGATE}").fetchone()
    return int(row[0]) if row else 0


def _write_operations(
    con: duckdb.DuckDBPyConnection, settings: Settings, full: bool = False
) -> dict[str, int]:
    """Rebuild the operations marts' figures from every current request and inspection (the saved current
    state merged with the raw files new to it: etl/marts/operations.py; every raw file when `full`)."""
    operations.build_current(con, settings, full)
    build_models(con, OPERATIONS_AGGREGATES, given=operations.CURRENT_MODELS)
    rows = {}
    for model in OPERATIONS_AGGREGATES:
        dest = aggregates_dir(settings, model) / "data.parquet"
        copy_to_parquet(con, f"select * from {model} order by all", dest, settings)
        row = con.execute(f"select count(*) from {model}").fetchone()
        rows[model] = int(row[0]) if row else 0
    return rows


def build(
    settings: Settings, run_id: str, full: bool = False, vee_periods: Iterable[str] = ()
) -> MartsReport:
    """Rebuild the aggregates of every period touched since the watermark (all of them when `full`).

    Touched periods: those new manifest rows touch (`affected_periods`), `vee_periods` (the months the VEE
    run before this one rebuilt, handed forward), and the months of every VEE generation newer than the one
    the watermark records (`vee_rebuilt`): those cover a VEE run whose aggregates never ran, after a crash
    or when the stages run apart. The customer signals are rebuilt from the first month rebuilt on, and for
    any month without them (`signal_periods`). A run with nothing new changes nothing. Raises duckdb.Error
    when a source cannot be read; the watermark then stays, so the next run redoes the same periods.
    """
    since = 0 if full else read_watermark(settings)
    # read before any validated data, so that a VEE run finishing meanwhile stays to do
    generation, from_vee = vee_rebuilt(settings, read_vee_generation(settings))
    from_vee |= set(vee_periods)
    con = connect(settings)
    try:
        latest = _latest_seq(con, settings)
        unsignalled = known_periods(settings) - kept_signal_periods(settings)
        if latest <= since and not from_vee and not full and not unsignalled:
            log.info("aggregates are current (watermark %d, VEE generation %d)", since, generation)
            return MartsReport(run_id, [], watermark=since)
        if full:
            refresh_key_index(con, settings, latest, rebuild=True)
            periods = sorted(known_periods(settings))
        else:
            periods = sorted(affected_periods(settings, since) | from_vee)
        register_sources(con, settings)
        register_period_sources(con, settings, [], {d: set() for d in PERIODIC_DATASETS})
        prepared = prepare(con, settings)
        rows = {PLANS_AGGREGATE: _write_plans(con, settings)}
        arrived = {row[0] for row in _manifest_rows(con, settings, since, latest)} & set(OPERATIONS_DATASETS)
        if arrived or (full and any(raw_files(settings, d) for d in OPERATIONS_DATASETS)):
            rows |= _write_operations(con, settings, full)
        for start in range(0, len(periods), PERIODS_PER_PASS):
            chunk = periods[start : start + PERIODS_PER_PASS]
            register_period_sources(con, settings, chunk, source_periods(con, settings, chunk))
            build_periods(con, chunk, prepared)
            for period in chunk:
                for model in MONTHLY_AGGREGATES:
                    rows[model] = rows.get(model, 0) + _write_partition(con, settings, model, period)
        known = known_periods(settings)
        calendar = []
        for quarter in calendar_passes(periods, known):
            register_calendar_sources(con, settings, quarter)
            build_calendar(con, quarter, prepared)
            for period in quarter:
                for model in CALENDAR_AGGREGATES:
                    rows[model] = rows.get(model, 0) + _write_partition(con, settings, model, period)
            calendar += quarter
    finally:
        con.close()
    signals = signal_periods([*periods, *calendar], known, kept_signal_periods(settings))
    if signals:
        rows |= _write_signals(settings, signals)
    log.info("rebuilt aggregates of %s", ", ".join(periods))
    _write_watermark(settings, latest, generation, run_id, periods)
    return MartsReport(run_id, periods, rows, watermark=latest)
