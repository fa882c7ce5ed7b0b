"""Monthly aggregates behind the marts: raw bill lines and payments, validated energy -> lake/aggregates.

Each monthly model is rebuilt one period at a time into
`lake/aggregates/<model>/period=YYYY-MM/data.parquet`; the current plans, which are not monthly, go to
`lake/aggregates/int_plans__current/data.parquet`. `lake/aggregates/_watermark.json` holds the highest
manifest `ingest_seq` processed and moves only after every touched period is rebuilt, so a crash means
the next run redoes the same periods. Publishing (etl/publish.py) reads only these files.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from etl.contract import DATASETS
from etl.duck import connect
from etl.lake import (
    aggregates_dir,
    copy_to_parquet,
    file_stem,
    new_tmp_path,
    publish_file,
    raw_dir,
    raw_files,
    read_manifest,
    sql_list,
    validated_dir,
)
from etl.models import register_parquet, register_raw, run_model, run_models, set_period
from etl.settings import Settings

log = logging.getLogger(__name__)

# validated/meter_monthly as VEE writes it (docs/architecture.md, "Interfaces between the stages").
METER_MONTHLY_COLUMNS: dict[str, str] = {
    "period": "VARCHAR",
    "meter_id": "VARCHAR",
    "expected_intervals": "BIGINT",
    "actual_intervals": "BIGINT",
    "upstream_estimated_intervals": "BIGINT",
    "edited_intervals": "BIGINT",
    "estimated_intervals": "BIGINT",
    "missing_intervals": "BIGINT",
    "recorded_kwh": "DECIMAL(38,6)",
    "energy_kwh": "DECIMAL(38,12)",
    "estimated_energy_kwh": "DECIMAL(38,12)",
}

# Staging models are views, so that a period's filters reach the Parquet scans.
STAGING_MODELS = (
    "stg_lake__customers",
    "stg_lake__network",
    "stg_lake__plans",
    "stg_lake__bill_lines",
    "stg_lake__payments",
)
CURRENT_MODELS = ("int_customers__current", "int_network__current", "int_plans__current")
PERIOD_MODELS = ("int_bill_lines__current", "int_payments__current")

PLANS_AGGREGATE = "int_plans__current"
PERIOD_WIDE_REFERENCE = ("customers", "network", "meters")
PLANS_COLUMNS: dict[str, str] = {
    "plan_year": "BIGINT",
    "region_code": "VARCHAR",
    "kpi": "VARCHAR",
    "target": "DECIMAL(18,6)",
    "snapshot_date": "DATE",
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
}

PERIODIC_DATASETS = ("bill_lines", "payments")


@dataclass
class MartsReport:
    """What one build did: the periods whose aggregates were rebuilt and the rows written per model."""

    run_id: str
    periods_rebuilt: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    watermark: int | None = None


def watermark_path(settings: Settings) -> Path:
    return settings.lake / "aggregates" / "_watermark.json"


def read_watermark(settings: Settings) -> int:
    """The highest manifest ingest_seq the aggregates have processed (0 before the first build)."""
    path = watermark_path(settings)
    if not path.exists():
        return 0
    return int(json.loads(path.read_text(encoding="utf-8"))["ingest_seq"])


def _write_watermark(settings: Settings, ingest_seq: int, run_id: str, periods: list[str]) -> None:
    tmp = new_tmp_path(settings, ".json")
    record = {"ingest_seq": ingest_seq, "run_id": run_id, "periods_rebuilt": periods}
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    publish_file(tmp, watermark_path(settings))


def partition_path(settings: Settings, model: str, period: str) -> Path:
    return aggregates_dir(settings, model) / f"period={period}" / "data.parquet"


def _latest_seq(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    row = con.execute(f"select coalesce(max(ingest_seq), 0) from {read_manifest(con, settings)}").fetchone()
    return int(row[0]) if row else 0


def _partition_names(base: Path) -> set[str]:
    if not base.exists():
        return set()
    return {p.name.removeprefix("period=") for p in base.iterdir() if p.name.startswith("period=")}


def known_periods(settings: Settings) -> set[str]:
    """Every period with raw bill lines or payments, validated meter months, or an aggregate part."""
    periods = {
        f.parent.name.removeprefix("period=") for d in PERIODIC_DATASETS for f in raw_files(settings, d)
    }
    periods |= _partition_names(validated_dir(settings, "meter_monthly"))
    for model in MONTHLY_AGGREGATES:
        periods |= _partition_names(aggregates_dir(settings, model))
    return periods


def shift_period(period: str, months: int) -> str:
    """The period `months` months after `period` ('YYYY-MM'; negative goes back)."""
    year, month = (int(x) for x in period.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _new_files(settings: Settings, rows: list[tuple[str, list[str], int, str]]) -> dict[str, list[Path]]:
    """The raw Parquet files of the given manifest rows, by dataset."""
    files: dict[str, list[Path]] = defaultdict(list)
    for dataset, partitions, seq, file_hash in rows:
        for partition in partitions:
            path = raw_dir(settings, dataset) / partition / f"{file_stem(seq, file_hash)}.parquet"
            if path.exists():
                files[dataset].append(path)
    return files


def _periods_sharing(
    con: duckdb.DuckDBPyConnection, settings: Settings, dataset: str, new: list[Path]
) -> set[str]:
    """Periods holding rows that the new files may replace: lines of the same exports, the same payments."""
    if not new:
        return set()
    key, period = {
        "bill_lines": ("export_id", "billing_period"),
        "payments": ("payment_id", "strftime(paid_at, '%Y-%m')"),
    }[dataset]
    every = sql_list(raw_files(settings, dataset))
    rows = con.execute(
        f"""
        select distinct {period}
        from read_parquet({every}, union_by_name = true)
        where {key} in (select {key} from read_parquet({sql_list(new)}, union_by_name = true))
        """
    ).fetchall()
    return {r[0] for r in rows}


def _vee_affected_periods() -> Callable[[Settings, int], set[str]] | None:
    """VEE's own account of the periods it rebuilds for new readings, when etl.vee provides one."""
    if importlib.util.find_spec("etl.vee") is None:
        return None
    from etl import vee

    return getattr(vee, "affected_periods", None)


def _reading_periods(settings: Settings, since_seq: int, new_periods: set[str]) -> set[str]:
    """Periods whose validated energy new readings changed: VEE's answer, or their months +/- 1."""
    vee_periods = _vee_affected_periods()
    if vee_periods is not None:
        return set(vee_periods(settings, since_seq))
    # without VEE's answer: interpolation and like-day fills reach across a month boundary
    return {shift_period(p, d) for p in new_periods for d in (-1, 0, 1)}


def affected_periods(settings: Settings, since_seq: int) -> set[str]:
    """Periods whose aggregates the manifest rows above `since_seq` touch.

    A new customers, network or meters snapshot touches every period (it can move a customer to another
    region or a meter to another node; tariffs feed no aggregate and plans are rewritten on every build).
    New bill lines touch their periods and every period holding lines of the same export_ids; new payments
    their months and every month holding the same payment_ids; new readings the periods VEE rebuilds.
    Rejected files touch nothing.
    """
    con = connect(settings)
    try:
        manifest = read_manifest(con, settings)
        rows = con.execute(
            f"""
            select dataset, coalesce(partitions, []), ingest_seq, file_hash
            from {manifest}
            where ingest_seq > ? and status = 'INGESTED'
            order by ingest_seq
            """,
            [since_seq],
        ).fetchall()
        if any(r[0] in PERIOD_WIDE_REFERENCE for r in rows):
            return known_periods(settings)
        periods_of: dict[str, set[str]] = defaultdict(set)
        for dataset, partitions, _seq, _hash in rows:
            periods_of[dataset] |= {p.removeprefix("period=") for p in partitions if p.startswith("period=")}
        new = _new_files(settings, [r for r in rows if r[0] in PERIODIC_DATASETS])
        touched: set[str] = set()
        for dataset in PERIODIC_DATASETS:
            touched |= periods_of[dataset] | _periods_sharing(con, settings, dataset, new[dataset])
    finally:
        con.close()
    readings = {d for d, spec in DATASETS.items() if spec.folder == "readings"}
    if any(periods_of[d] for d in readings):
        touched |= _reading_periods(settings, since_seq, set().union(*(periods_of[d] for d in readings)))
    return touched


def register_sources(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Register the raw datasets and validated meter months the aggregates read."""
    for dataset in ("customers", "network", "plans", "meters", *PERIODIC_DATASETS):
        register_raw(con, settings, dataset)
    months = sorted(validated_dir(settings, "meter_monthly").glob("period=*/data.parquet"))
    register_parquet(con, "validated_meter_monthly", months, METER_MONTHLY_COLUMNS)


def _grouped_periods(rows: list[tuple[str, str]]) -> dict[str, set[str]]:
    """From (key, period) pairs: per period, every period that shares a key with it."""
    periods_of: dict[str, set[str]] = defaultdict(set)
    for key, period in rows:
        periods_of[key].add(period)
    sharing: dict[str, set[str]] = defaultdict(set)
    for periods in periods_of.values():
        for period in periods:
            sharing[period] |= periods
    return sharing


def source_partitions(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, dict[str, set[str]]]:
    """Per dataset and period, the other raw partitions a period's rows may be replaced from.

    Bill lines: the periods holding lines of the exports billed in the period. Payments: the months
    holding another delivery of one of the month's payment_ids. Reading only the key columns is cheap;
    it spares each period a scan of every partition's full rows.
    """
    queries = {
        "bill_lines": "select distinct export_id, billing_period from {files}",
        # ids by 64-bit hash: a collision only adds a partition to read, never drops one
        "payments": """
            with
            ids as (select hash(payment_id) as id_hash, strftime(paid_at, '%Y-%m') as month from {files}),
            moved as (select id_hash from ids group by id_hash having min(month) <> max(month))
            select distinct id_hash, month from ids where id_hash in (select id_hash from moved)
        """,
    }
    out: dict[str, dict[str, set[str]]] = {}
    for dataset, query in queries.items():
        files = raw_files(settings, dataset)
        rows: list[tuple] = []
        if files:
            relation = f"read_parquet({sql_list(files)}, union_by_name = true)"
            rows = con.execute(query.format(files=relation)).fetchall()
        out[dataset] = _grouped_periods([(str(k), str(p)) for k, p in rows])
    return out


def register_period_sources(
    con: duckdb.DuckDBPyConnection, settings: Settings, period: str, shared: dict[str, dict[str, set[str]]]
) -> None:
    """Point raw bill lines, payments and validated meter months at what `period` needs."""
    for dataset in PERIODIC_DATASETS:
        periods = shared[dataset].get(period, set()) | {period}
        register_raw(con, settings, dataset, [f"period={p}" for p in sorted(periods)])
    month = validated_dir(settings, "meter_monthly") / f"period={period}" / "data.parquet"
    register_parquet(con, "validated_meter_monthly", [month] if month.exists() else [], METER_MONTHLY_COLUMNS)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Build the staging views and the current reference tables over the registered sources."""
    run_models(con, STAGING_MODELS, "view")
    # the meters models are VEE's: the marts share its reading of the meters snapshots
    run_model(con, "stg_lake__meters", "view")
    run_models(con, ("int_meters__current", *CURRENT_MODELS))


def build_period(con: duckdb.DuckDBPyConnection, period: str) -> None:
    """Build the period's bill lines, payments and every monthly aggregate as tables in `con`."""
    set_period(con, period)
    run_models(con, PERIOD_MODELS)
    run_models(con, MONTHLY_AGGREGATES)


def _write_partition(con: duckdb.DuckDBPyConnection, settings: Settings, model: str, period: str) -> int:
    """Write one aggregate's period; a period left with no rows loses its partition."""
    dest = partition_path(settings, model, period)
    row = con.execute(f"select count(*) from {model}").fetchone()
    count = int(row[0]) if row else 0
    if count:
        copy_to_parquet(con, f"select * from {model} order by all", dest, settings)
    elif dest.parent.exists():
        shutil.rmtree(dest.parent)
    return count


def _write_plans(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    copy_to_parquet(
        con,
        f"select * from {PLANS_AGGREGATE} order by all",
        aggregates_dir(settings, PLANS_AGGREGATE) / "data.parquet",
        settings,
    )
    row = con.execute(f"select count(*) from {PLANS_AGGREGATE}").fetchone()
    return int(row[0]) if row else 0


def build(settings: Settings, run_id: str, full: bool = False) -> MartsReport:
    """Rebuild the aggregates of every period touched since the watermark (all of them when `full`).

    A run with no new manifest row changes nothing. Raises duckdb.Error when a source cannot be read;
    the watermark then stays, so the next run redoes the same periods.
    """
    since = 0 if full else read_watermark(settings)
    con = connect(settings)
    try:
        latest = _latest_seq(con, settings)
        if latest <= since and not full:
            log.info("aggregates are current (watermark %d)", since)
            return MartsReport(run_id, [], watermark=since)
        periods = sorted(known_periods(settings) if full else affected_periods(settings, since))
        register_sources(con, settings)
        prepare(con)
        rows = {PLANS_AGGREGATE: _write_plans(con, settings)}
        shared = source_partitions(con, settings)
        for period in periods:
            register_period_sources(con, settings, period, shared)
            build_period(con, period)
            for model in MONTHLY_AGGREGATES:
                rows[model] = rows.get(model, 0) + _write_partition(con, settings, model, period)
            log.info("rebuilt aggregates of %s", period)
    finally:
        con.close()
    _write_watermark(settings, latest, run_id, periods)
    return MartsReport(run_id, periods, rows, watermark=latest)
