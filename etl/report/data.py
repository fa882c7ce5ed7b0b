"""What the report shows, read from the published marts for one period.

Every figure and comparison comes from a published column: the KPI lines are etl.summary.company_kpis,
the lines `meterflow kpi` prints; the plan levels the charts draw are the mart's plan columns. The one
comparison the marts do not publish, the month's loss rate against plan and a year earlier, is the
difference of two published rates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from etl.duck import connect
from etl.errors import MeterflowError
from etl.report.labels import FIGURE_KEYS
from etl.report.loss_hunting import LossHunting, load_loss_hunting
from etl.settings import Settings
from etl.summary import KpiLine, company_kpis

PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TOP_NODES = 10  # of each node type


@dataclass(frozen=True)
class Operations:
    """The second half of the report: customer service and inspections (CONTRACT.md §9)."""

    service: list[dict[str, Any]]  # company rows of mart_service_monthly, January last year to the period
    service_regions: list[dict[str, Any]]  # the period's rows, regions then the company, with YTD sums
    by_type: list[dict[str, Any]]  # year to date, per request type
    by_channel: list[dict[str, Any]]  # year to date, per channel
    inspections: list[dict[str, Any]]  # company rows of mart_inspections_monthly, as `service`
    inspection_regions: list[dict[str, Any]]


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, read from the marts for one period."""

    period: str
    kpis: list[KpiLine]
    company: list[dict[str, Any]]  # company rows from January of the previous year to the period
    regions: list[dict[str, Any]]
    feeders: list[dict[str, Any]]  # the feeders with the most lost kWh from January, most first
    dts: list[dict[str, Any]]  # the distribution transformers likewise
    quality_by_dataset: list[dict[str, Any]]  # the latest result of every check, summed per dataset
    quality_failures: list[dict[str, Any]]  # the checks that did not pass, for the appendix
    quality_other_files: int  # failed file checks of files named for other periods (left out above)
    latest_check: str | None  # when the latest check ran, 'YYYY-MM-DD HH:MM' UTC
    operations: Operations | None = None  # None when the marts hold no operations data for the period
    loss_hunting: LossHunting | None = None  # None when the marts lack the loss hunting marts

    @property
    def year(self) -> int:
        return int(self.period[:4])

    @property
    def month(self) -> int:
        return int(self.period[5:7])


def check_period(period: str) -> str:
    """Return `period` when it is YYYY-MM. Raises MeterflowError otherwise."""
    if not PERIOD_PATTERN.match(period):
        raise MeterflowError(f"period must be YYYY-MM (e.g. 2025-09), not {period!r}")
    return period


def load_report(settings: Settings, period: str, marts: Path | None = None) -> ReportData:
    """Read the report's figures for `period`. Raises MeterflowError when the marts lack them."""
    period, kpis = company_kpis(settings, period, marts)
    year = int(period[:4])
    con = connect(settings, marts or settings.marts_path, read_only=True)
    try:
        company = _rows(
            con,
            """
            select period, kwh_sold, avg_price_vnd_per_kwh, avg_price_ytd_vnd_per_kwh,
                   plan_avg_price_vnd_per_kwh, loss_rate_pct, loss_rate_ytd_pct, plan_loss_rate_pct,
                   cashless_customer_pct, cashless_amount_pct
            from mart_kpi_monthly
            where region_code = 'ALL' and period between ? and ?
            order by period
            """,
            [f"{year - 1}-01", period],
        )
        name = "region_name" if _has_column(con, "mart_kpi_monthly", "region_name") else "region_code"
        regions = _rows(
            con,
            f"""
            select region_code, {name} as region_name, kwh_sold_ytd, plan_attainment_pct,
                   kwh_sold_ytd_yoy_pct, avg_price_ytd_vnd_per_kwh, loss_rate_ytd_pct,
                   loss_rate_ytd_vs_plan_pts, cashless_customer_pct
            from mart_kpi_monthly
            where period = ?
            order by region_code = 'ALL', region_code
            """,
            [period],
        )
        feeders, dts = _top_nodes(con, period, "FEEDER"), _top_nodes(con, period, "DT")
        by_dataset, failures, other_files, latest = _quality(con, period)
        operations = _operations(con, period)
        loss_hunting = load_loss_hunting(con, period)
    finally:
        con.close()
    return ReportData(
        period=period,
        kpis=_with_month_loss_comparisons(kpis, company, period),
        company=company,
        regions=regions,
        feeders=feeders,
        dts=dts,
        quality_by_dataset=by_dataset,
        quality_failures=failures,
        quality_other_files=other_files,
        latest_check=latest,
        operations=operations,
        loss_hunting=loss_hunting,
    )


OPERATIONS_MARTS = ("mart_service_monthly", "mart_service_mix_monthly", "mart_inspections_monthly")


def _operations(con: Any, period: str) -> Operations | None:
    """The operations figures of `period`; None when the marts (an older file) lack the operations marts
    or hold no row for the period."""
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    if not set(OPERATIONS_MARTS) <= tables:
        return None
    january, year_before = f"{period[:4]}-01", f"{int(period[:4]) - 1}-01"
    name = "m.region_name" if _has_column(con, "mart_service_monthly", "region_name") else "m.region_code"
    iname = "region_name" if _has_column(con, "mart_inspections_monthly", "region_name") else "region_code"
    service_regions = _rows(
        con,
        f"""
        with year_to_date as (
            select region_code, sum(requests_resolved) as resolved_ytd, sum(escalated) as escalated_ytd,
            from mart_service_monthly
            where period between $january and $period
            group by region_code
        )
        select m.region_code, {name} as region_name, m.requests_received,
               m.requests_received_ytd, y.resolved_ytd, m.on_time_ytd_pct,
               m.backlog_end, m.overdue_end, y.escalated_ytd
        from mart_service_monthly as m
        inner join year_to_date as y on m.region_code = y.region_code
        where m.period = $period
        order by m.region_code = 'ALL', m.region_code
        """,
        {"january": january, "period": period},
    )
    inspection_regions = _rows(
        con,
        f"""
        select region_code, {iname} as region_name, inspections, violations, inspections_ytd, violations_ytd,
               violations_ytd / nullif(inspections_ytd, 0) * 100 as hit_rate_ytd_pct, recovered_vnd_ytd,
               recovered_vnd_ytd / nullif(violations_ytd, 0) as recovered_vnd_per_violation,
        from mart_inspections_monthly
        where period = ?
        order by region_code = 'ALL', region_code
        """,
        [period],
    )
    if not service_regions and not inspection_regions:
        return None

    def mix(column: str) -> list[dict[str, Any]]:
        return _rows(
            con,
            f"""
            select {column} as name, sum(requests_received) as received,
                   sum(requests_received) / sum(sum(requests_received)) over () * 100 as share_pct,
                   sum(requests_resolved) as resolved,
                   sum(resolved_on_time) / nullif(sum(requests_resolved), 0) * 100 as on_time_pct,
            from mart_service_mix_monthly
            where period between ? and ?
            group by {column}
            order by received desc, name
            """,
            [january, period],
        )

    def company(mart: str) -> list[dict[str, Any]]:
        sql = f"select * from {mart} where region_code = 'ALL' and period between ? and ? order by period"
        return _rows(con, sql, [year_before, period])

    return Operations(
        service=company("mart_service_monthly"),
        service_regions=service_regions,
        by_type=mix("request_type"),
        by_channel=mix("channel"),
        inspections=company("mart_inspections_monthly"),
        inspection_regions=inspection_regions,
    )


def _rows(con: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, params if isinstance(params, dict) else list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _has_column(con: Any, table: str, column: str) -> bool:
    sql = "select count(*) from duckdb_columns() where table_name = ? and column_name = ?"
    return bool(con.execute(sql, [table, column]).fetchone()[0])


def _top_nodes(con: Any, period: str, node_type: str) -> list[dict[str, Any]]:
    """The nodes of `node_type` with the most lost kWh from January to `period`, with their loss rate over
    the same months a year earlier beside (a feeder and its transformers are ranked apart: a feeder's
    losses include its transformers')."""
    region = (
        "region_name" if _has_column(con, "mart_energy_balance_monthly", "region_name") else "region_code"
    )
    return _rows(
        con,
        f"""
        with ytd as (
            select
                node_id,
                arg_max(region_code, period) as region_code,
                arg_max({region}, period) as region_name,
                sum(kwh_in) as kwh_in,
                sum(kwh_billed) as kwh_billed,
                sum(loss_kwh) as loss_kwh,
            from mart_energy_balance_monthly
            where node_type = $node_type and period between $year_start and $period
            group by node_id
        ),
        year_before as (
            select node_id, sum(loss_kwh) / nullif(sum(kwh_in), 0) * 100 as loss_rate_pct,
            from mart_energy_balance_monthly
            where node_type = $node_type and period between $last_year_start and $last_year_period
            group by node_id
        )
        select ytd.*, ytd.loss_kwh / nullif(ytd.kwh_in, 0) * 100 as loss_rate_pct,
               b.loss_rate_pct as loss_rate_last_year_pct,
        from ytd
        left join year_before as b on ytd.node_id = b.node_id
        order by ytd.loss_kwh desc nulls last, ytd.node_id
        limit {TOP_NODES}
        """,
        {
            "node_type": node_type,
            "period": period,
            "year_start": f"{period[:4]}-01",
            "last_year_start": f"{int(period[:4]) - 1}-01",
            "last_year_period": f"{int(period[:4]) - 1}{period[4:]}",
        },
    )


def _quality(con: Any, period: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, str | None]:
    """The latest result of every check, summed per landing dataset (raw.interval_reads and
    ingest.interval_reads are both interval_reads; the files' own checks are 'files', the validated layer's
    'validated', the marts' 'marts'); the checks that did not pass, except those of landing files named for
    another period (counted instead); when the latest check ran."""
    if not _has_column(con, "mart_data_quality", "check_name"):
        return [], [], 0, None
    compact = period.replace("-", "")
    latest = f"""
        with latest as (
            select
                *,
                case
                    when stage in ('validated', 'marts') then stage
                    when split_part(suite, '.', 2) in ('manifest', 'columns', 'repeated_keys') then 'files'
                    else split_part(suite, '.', 2)
                end as dataset,
                regexp_extract(check_name, '^file_accepted\\((.*)\\)$', 1) as file,
                file <> '' and not (contains(file, '{compact}') or contains(file, '{period}'))
                    as other_period,
            from mart_data_quality
            qualify row_number() over (
                partition by stage, suite, check_name order by checked_at desc, run_id desc
            ) = 1
        )
    """
    by_dataset = _rows(
        con,
        latest
        + """
        select
            dataset,
            count(*) as checks,
            count(*) filter (where passed) as passed,
            count(*) filter (where not passed and severity = 'critical') as critical_failed,
            count(*) filter (where not passed and severity <> 'critical') as warnings_failed,
            max(rows_checked) filter (where stage = 'raw') as rows_in_lake,
            sum(rows_failed) filter (where stage = 'ingest') as rows_quarantined,
            count(*) filter (where file <> '' and not passed and not other_period) as files_with_quarantine,
        from latest
        group by dataset
        order by min(list_position(['ingest', 'raw', 'validated', 'marts'], stage)), dataset
        """,
    )
    failures = _rows(
        con,
        latest
        + """
        select stage, dataset, suite, check_name, file, description, severity, rows_checked, rows_failed
        from latest
        where not passed and not other_period
        order by severity = 'critical' desc, stage, dataset, rows_failed desc, check_name
        limit 100
        """,
    )
    other_files, last = con.execute(
        latest + "select count(*) filter (where other_period and not passed), max(checked_at) from latest"
    ).fetchone()
    return by_dataset, failures, int(other_files), last.strftime("%Y-%m-%d %H:%M") if last else None


def _with_month_loss_comparisons(
    kpis: list[KpiLine], company: list[dict[str, Any]], period: str
) -> list[KpiLine]:
    """Give the month's loss rate a comparison with the year's plan and with the same month last year."""
    by_period = {r["period"]: r for r in company}
    now = by_period.get(period)
    before = by_period.get(f"{int(period[:4]) - 1}{period[4:]}")
    if now is None or now["loss_rate_pct"] is None:
        return kpis
    vs_plan = _difference(now["loss_rate_pct"], now["plan_loss_rate_pct"])
    yoy = _difference(now["loss_rate_pct"], before["loss_rate_pct"] if before else None)
    out = []
    for line in kpis:
        if FIGURE_KEYS.get(line.figure) == "loss_month":
            line = replace(line, vs_plan=vs_plan, vs_plan_unit="pts vs plan", yoy=yoy, yoy_unit="pts YoY")
        out.append(line)
    return out


def _difference(value: Any, other: Any) -> float | None:
    """`value` - `other` in percentage points; None when either is missing."""
    if value is None or other is None:
        return None
    return float(value) - float(other)
