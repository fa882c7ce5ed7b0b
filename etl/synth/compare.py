"""A data home's published marts and lake compared with the generator's truth (truth/ of a generated home).

Every truth table is compared row for row and figure for figure with its mart (or lake table): a key
the truth has and the mart lacks, a key the mart has and the truth lacks (an extra period, region or
node), and every differing figure is a mismatch. Sums of kWh and đồng are exact decimals and must be
equal; ratios are floats and must agree to REL. The manifest's rows in, quarantined and status per
landing file are compared with what the generator wrote into each file, so a lost row fails here even
where no figure shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from etl.lake import manifest_files, sql_list
from etl.settings import Settings

REL = 1e-9


@dataclass(frozen=True)
class Pairing:
    """A truth table and the published table it describes: key columns, and the rows it covers."""

    truth: str
    table: str  # a mart in marts.duckdb, or `lake:<folder>` for a validated lake table
    keys: tuple[str, ...]
    scope: str = "true"  # the rows of `table` the truth covers, as SQL
    skip: tuple[str, ...] = ()  # truth columns that no published column carries


PAIRINGS = (
    Pairing(
        "kpis_company",
        "mart_kpi_monthly",
        ("period", "region_code"),
        "region_code = 'ALL'",
        ("kwh_received_true", "kwh_received_exact"),
    ),
    Pairing(
        "kpis_region",
        "mart_kpi_monthly",
        ("period", "region_code"),
        "region_code <> 'ALL'",
        ("kwh_received_true", "kwh_received_exact"),
    ),
    Pairing(
        "sales_monthly", "mart_sales_monthly", ("period", "region_code", "customer_class", "tariff_code")
    ),
    Pairing("energy_balance", "mart_energy_balance_monthly", ("period", "node_id")),
    Pairing("service_monthly", "mart_service_monthly", ("period", "region_code")),
    Pairing("service_mix_monthly", "mart_service_mix_monthly", ("period", "request_type", "channel")),
    Pairing("inspections_monthly", "mart_inspections_monthly", ("period", "region_code")),
    Pairing(
        "meter_monthly",
        "lake:validated/meter_monthly",
        ("period", "meter_id", "channel"),
        skip=("role", "node_id", "multiplier", "true_energy_kwh", "recoverable"),
    ),
    Pairing("meter_mart", "mart_meter_monthly", ("period", "meter_id", "channel")),
)


@dataclass
class Comparison:
    """What one truth table's comparison found."""

    truth: str
    rows: int = 0
    figures: int = 0
    missing: list[tuple] = field(default_factory=list)  # keys the truth has, the table lacks
    extra: list[tuple] = field(default_factory=list)  # keys the table has, the truth lacks
    wrong: list[tuple] = field(default_factory=list)  # (key, column, published, truth)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.wrong)

    def describe(self) -> str:
        if self.ok:
            return f"{self.truth}: {self.rows} rows, {self.figures} figures equal"
        return (
            f"{self.truth}: {len(self.missing)} rows missing (e.g. {self.missing[:3]}), "
            f"{len(self.extra)} extra rows (e.g. {self.extra[:3]}), "
            f"{len(self.wrong)} of {self.figures} figures differ (e.g. {self.wrong[:3]})"
        )


def same(a: object, b: object) -> bool:
    """Published value `a` equals truth value `b`: decimals exactly, floats to REL."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        return abs(float(a) - float(b)) <= REL * max(1.0, abs(float(b)))
    return a == b


def compare_table(
    con: duckdb.DuckDBPyConnection, settings: Settings, truth_dir: Path, pairing: Pairing
) -> Comparison:
    """Compare one truth table with its published table, in `con` (with the marts attached as `m`)."""
    truth_path = truth_dir / f"{pairing.truth}.parquet"
    truth = con.execute(f"select * from read_parquet('{truth_path}')")
    truth_cols = [d[0] for d in truth.description]
    truth_rows = truth.fetchall()
    if pairing.table.startswith("lake:"):
        files = sorted((settings.lake / pairing.table.removeprefix("lake:")).glob("*/*.parquet"))
        source = f"read_parquet({sql_list(files)}, hive_partitioning = false)"
    else:
        source = f"m.{pairing.table}"
    cols = [c for c in truth_cols if c not in pairing.keys and c not in pairing.skip]
    select = ", ".join([*pairing.keys, *cols])
    published = {
        tuple(r[: len(pairing.keys)]): r[len(pairing.keys) :]
        for r in con.execute(f"select {select} from {source} where {pairing.scope}").fetchall()
    }
    out = Comparison(pairing.truth, rows=len(truth_rows))
    seen = set()
    for row in truth_rows:
        t = dict(zip(truth_cols, row, strict=True))
        key = tuple(t[k] for k in pairing.keys)
        seen.add(key)
        if key not in published:
            out.missing.append(key)
            continue
        for col, value in zip(cols, published[key], strict=True):
            out.figures += 1
            if not same(value, t[col]):
                out.wrong.append((key, col, value, t[col]))
    out.extra = sorted(k for k in published if k not in seen)
    return out


def compare_manifest(con: duckdb.DuckDBPyConnection, settings: Settings, truth_dir: Path) -> Comparison:
    """Rows in, quarantined and status of every landing file against what the generator put in it."""
    summary = json.loads((truth_dir / "summary.json").read_text(encoding="utf-8"))
    expected = {path: (f["rows"], f["quarantined"], f["status"]) for path, f in summary["files"].items()}
    files = manifest_files(settings)
    found: dict[str, tuple] = {}
    if files:
        sql = f"select source_file, rows_in, rows_quarantined, status from read_parquet({sql_list(files)})"
        found = {r[0]: tuple(r[1:]) for r in con.execute(sql).fetchall()}
    out = Comparison("landing files", rows=len(expected))
    for path, want in expected.items():
        if path not in found:
            out.missing.append((path,))
            continue
        got = found[path]
        out.figures += 1
        if want[2] != "INGESTED":  # a file rejected whole: its status is what is known
            got, want = (None, None, got[2]), (None, None, want[2])
        if got != want:
            out.wrong.append(((path,), "rows_in, rows_quarantined, status", got, want))
    out.extra = sorted((p,) for p in found if p not in expected)
    return out


def compare_with_truth(settings: Settings, truth_dir: Path | None = None) -> list[Comparison]:
    """Every truth table of a generated home (`truth_dir`, default <home>/truth) against the home's
    published marts and lake."""
    truth = truth_dir or settings.home / "truth"
    con = duckdb.connect()
    try:
        con.execute(f"attach '{settings.marts_path}' as m (read_only)")
        tables = [compare_table(con, settings, truth, p) for p in PAIRINGS]
        return [compare_manifest(con, settings, truth), *tables]
    finally:
        con.close()


@dataclass
class LossHunting:
    """How the calendar-month balance, the hotspots and the candidate list do against the planted truth
    (docs/loss_hunting.md), per calendar month with a calendar-month company figure."""

    months: list[str] = field(default_factory=list)
    company_error_pts: dict[str, float] = field(default_factory=dict)  # calendar rate - true rate
    dts_within_half_point: dict[str, float] = field(default_factory=dict)  # share of DTs without theft
    dts_not_available: dict[str, int] = field(default_factory=dict)  # DTs without theft and without a figure
    list_length: int = 0
    precision_pct: dict[str, float] = field(default_factory=dict)  # thieves among the first list_length
    listed: dict[str, int] = field(default_factory=dict)
    decoy_share_of_false_pct: dict[str, float] = field(default_factory=dict)
    theft_dts_in_top5_pct: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        def span(values: dict[str, float]) -> str:
            return f"{min(values.values()):.2f}..{max(values.values()):.2f}" if values else "-"

        return (
            f"loss hunting over {len(self.months)} months: company error {span(self.company_error_pts)} "
            f"points, DTs within 0.5 points {span(self.dts_within_half_point)} %, precision of the first "
            f"{self.list_length} {span(self.precision_pct)} %, theft DTs in the top 5 % "
            f"{span(self.theft_dts_in_top5_pct)} %, decoys among false alarms "
            f"{span(self.decoy_share_of_false_pct)} %"
        )


def loss_hunting_accuracy(settings: Settings, truth_dir: Path, list_length: int) -> LossHunting:
    """The must-show figures of docs/loss_hunting.md on a generated home after `meterflow run`.

    DTs whose calendar figure is not available (NULL: reads that do not cover the month, or reading periods
    that start before the first DT energy) are left out of `dts_within_half_point` and counted in
    `dts_not_available`.

    The DTs without theft are those with no theft case started before the month's end (truth/balance_calendar
    planted_thefts); the hot spots are measured on the DTs with a theft running since before the month's
    start (a theft that starts on the 28th barely shows in its month); a listed customer is a thief when it
    has a planted bypass or tampered meter that started before the month's end (truth/theft_labels).
    """
    con = duckdb.connect()
    try:
        con.execute(f"attach '{settings.marts_path}' as m (read_only)")
        truth = {n: f"read_parquet('{truth_dir / n}.parquet')" for n in ("kpis_calendar", "balance_calendar")}
        labels = f"read_parquet('{truth_dir / 'theft_labels.parquet'}')"
        out = LossHunting(list_length=list_length)
        for period, error in con.execute(
            f"""
            select k.period, k.loss_rate_calendar_pct - t.loss_rate_true_pct
            from m.mart_kpi_monthly as k inner join {truth["kpis_calendar"]} as t using (period)
            where k.region_code = 'ALL' and k.loss_rate_calendar_pct is not null order by 1
            """
        ).fetchall():
            out.months.append(period)
            out.company_error_pts[period] = float(error)
        for period, share in con.execute(
            f"""
            select b.period, avg((abs(b.loss_rate_calendar_pct - t.loss_rate_true_pct) <= 0.5)::int)
            from m.mart_energy_balance_monthly as b
            inner join {truth["balance_calendar"]} as t using (period, node_id)
            where b.node_type = 'DT' and t.planted_thefts = 0 and b.loss_rate_calendar_pct is not null
            group by 1 order by 1
            """
        ).fetchall():
            out.dts_within_half_point[period] = float(share) * 100
        for period, missing in con.execute(
            f"""
            select b.period, count(*) filter (where b.loss_rate_calendar_pct is null)
            from m.mart_energy_balance_monthly as b
            inner join {truth["balance_calendar"]} as t using (period, node_id)
            where b.node_type = 'DT' and t.planted_thefts = 0 and b.kwh_in is not null
            group by 1 order by 1
            """
        ).fetchall():
            out.dts_not_available[period] = int(missing)
        for period, listed, precision, decoys in con.execute(
            f"""
            with listed as (
                select c.period, c.customer_id,
                    bool_or(
                        l.is_theft
                        and l.starts_at < strptime(c.period || '-01', '%Y-%m-%d') + interval 1 month
                    ) as thief,
                    bool_or(not l.is_theft) as decoy,
                from m.mart_inspection_candidates as c
                left join {labels} as l on c.customer_id = l.customer_id
                where c.candidate_rank <= ?
                group by c.period, c.customer_id
            )
            select period, count(*), avg(coalesce(thief, false)::int) * 100,
                count(*) filter (where not coalesce(thief, false) and coalesce(decoy, false)) * 100.0
                / nullif(count(*) filter (where not coalesce(thief, false)), 0)
            from listed group by period order by period
            """,
            [list_length],
        ).fetchall():
            if period in out.company_error_pts:
                out.listed[period] = int(listed)
                out.precision_pct[period] = float(precision)
                if decoys is not None:
                    out.decoy_share_of_false_pct[period] = float(decoys)
        for period, found in con.execute(
            f"""
            with ranked as (
                select *, hotspot_rank <= ceil(0.05 * count(*) over (partition by period)) as is_top
                from m.mart_loss_hotspots_monthly
            )
            select r.period, avg(r.is_top::int) * 100
            from ranked as r
            where r.node_id in (
                select l.dt_id from {labels} as l
                where l.is_theft and l.starts_at < strptime(r.period || '-01', '%Y-%m-%d')
            )
            group by r.period order by 1
            """
        ).fetchall():
            if period in out.company_error_pts:
                out.theft_dts_in_top5_pct[period] = float(found)
        return out
    finally:
        con.close()
