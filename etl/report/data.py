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
from etl.settings import Settings
from etl.summary import KpiLine, company_kpis

PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TOP_NODES = 20


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, read from the marts for one period."""

    period: str
    kpis: list[KpiLine]
    company: list[dict[str, Any]]  # company rows from January of the previous year to the period
    regions: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    quality_by_stage: list[dict[str, Any]]
    quality_failures: list[dict[str, Any]]
    quality_runs: int
    latest_run: str | None

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
        regions = _rows(
            con,
            """
            select region_code, kwh_sold_ytd, plan_attainment_pct, kwh_sold_ytd_yoy_pct,
                   avg_price_ytd_vnd_per_kwh, loss_rate_ytd_pct, loss_rate_ytd_vs_plan_pts,
                   cashless_customer_pct
            from mart_kpi_monthly
            where period = ?
            order by region_code = 'ALL', region_code
            """,
            [period],
        )
        nodes = _top_nodes(con, period)
        by_stage, failures, runs, latest = _quality(con)
    finally:
        con.close()
    return ReportData(
        period=period,
        kpis=_with_month_loss_comparisons(kpis, company, period),
        company=company,
        regions=regions,
        nodes=nodes,
        quality_by_stage=by_stage,
        quality_failures=failures,
        quality_runs=runs,
        latest_run=latest,
    )


def _rows(con: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, params if isinstance(params, dict) else list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _top_nodes(con: Any, period: str) -> list[dict[str, Any]]:
    """The nodes with the most lost kWh from January to `period`, with the month's loss beside."""
    return _rows(
        con,
        f"""
        with ytd as (
            select
                node_id,
                arg_max(node_type, period) as node_type,
                arg_max(region_code, period) as region_code,
                sum(kwh_in) as kwh_in,
                sum(kwh_billed) as kwh_billed,
                sum(loss_kwh) as loss_kwh,
                sum(loss_kwh) filter (where period = $period) as loss_kwh_month,
                sum(kwh_in * estimated_share_pct) / nullif(sum(kwh_in), 0) as estimated_share_pct,
            from mart_energy_balance_monthly
            where period between $year_start and $period
            group by node_id
        )
        select *, loss_kwh / nullif(kwh_in, 0) * 100 as loss_rate_pct
        from ytd
        order by loss_kwh desc nulls last, node_id
        limit {TOP_NODES}
        """,
        {"period": period, "year_start": f"{period[:4]}-01"},
    )


def _quality(con: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, str | None]:
    """Per stage, the latest result of each check; the checks that failed; runs; the latest run."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_name = 'mart_data_quality'"
    ).fetchone()[0]
    if not exists:
        return [], [], 0, None
    latest = """
        with latest as (
            select * from mart_data_quality
            qualify row_number() over (
                partition by stage, suite, check_name order by checked_at desc, run_id desc
            ) = 1
        )
    """
    by_stage = _rows(
        con,
        latest
        + """
        select
            stage,
            count(*) as checks,
            count(*) filter (where passed) as passed,
            count(*) filter (where not passed and severity = 'critical') as critical_failed,
            count(*) filter (where not passed and severity <> 'critical') as warnings_failed,
            sum(rows_checked) as rows_checked,
            sum(rows_failed) as rows_failed,
        from latest
        group by stage
        order by list_position(['ingest', 'raw', 'validated', 'marts'], stage) nulls last, stage
        """,
    )
    failures = _rows(
        con,
        latest
        + """
        select stage, suite, check_name, description, severity, rows_checked, rows_failed, run_id
        from latest
        where not passed
        order by severity = 'critical' desc, rows_failed desc, suite, check_name
        limit 50
        """,
    )
    runs, last_run = con.execute(
        "select count(distinct run_id), arg_max(run_id, checked_at) from mart_data_quality"
    ).fetchone()
    return by_stage, failures, int(runs), last_run


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
