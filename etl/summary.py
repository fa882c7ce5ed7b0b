"""The company KPI table of the management report, read from the published marts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etl.duck import connect
from etl.errors import MeterflowError
from etl.settings import Settings


@dataclass(frozen=True)
class KpiLine:
    """One line of the report's first table: a figure, its value and how it compares."""

    figure: str
    value: float | None
    unit: str
    vs_plan: float | None
    vs_plan_unit: str
    yoy: float | None
    yoy_unit: str


def latest_period(settings: Settings, marts: Path | None = None) -> str:
    """The newest period of the company row. Raises MeterflowError when nothing is published."""
    con = _open(settings, marts)
    try:
        row = con.execute("select max(period) from mart_kpi_monthly where region_code = 'ALL'").fetchone()
    finally:
        con.close()
    if not row or row[0] is None:
        raise MeterflowError("the published marts hold no company figures yet; run `meterflow run` first")
    return str(row[0])


def _periods_held(settings: Settings, marts: Path | None) -> str:
    """Which periods the marts hold, for a message: 'they hold 2024-01 to 2025-09 (21 periods)'."""
    con = _open(settings, marts)
    try:
        first, last, n = con.execute(
            "select min(period), max(period), count(distinct period) from mart_kpi_monthly "
            "where region_code = 'ALL'"
        ).fetchone()  # type: ignore[misc]
    finally:
        con.close()
    if not n:
        return "they hold no company figures yet; run `meterflow run` first"
    if n == 1:
        return f"they hold {first} only"
    return f"they hold {first} to {last} ({n} periods)"


def company_kpis(
    settings: Settings, period: str | None = None, marts: Path | None = None
) -> tuple[str, list[KpiLine]]:
    """The company's KPI lines for `period` (default: the latest). Raises MeterflowError when absent."""
    period = period or latest_period(settings, marts)
    con = _open(settings, marts)
    try:
        row = con.execute(
            """
            select kwh_sold_ytd, plan_attainment_pct, kwh_sold_ytd_yoy_pct,
                   avg_price_ytd_vnd_per_kwh, avg_price_ytd_vs_plan_vnd, avg_price_ytd_yoy_vnd,
                   loss_rate_ytd_pct, loss_rate_ytd_vs_plan_pts, loss_rate_ytd_yoy_pts,
                   loss_rate_pct, cashless_customer_pct, cashless_amount_pct
            from mart_kpi_monthly where region_code = 'ALL' and period = ?
            """,
            [period],
        ).fetchone()
    finally:
        con.close()
    if row is None:
        raise MeterflowError(
            f"no company figures for period {period} in the published marts; {_periods_held(settings, marts)}"
        )
    f = [None if v is None else float(v) for v in row]
    return period, [
        KpiLine("kWh sold, year to date", f[0], "kWh", f[1], "% of plan", f[2], "% YoY"),
        KpiLine("Average selling price, YTD", f[3], "VND/kWh", f[4], "VND vs plan", f[5], "VND YoY"),
        KpiLine("Loss rate, year to date", f[6], "%", f[7], "pts vs plan", f[8], "pts YoY"),
        KpiLine("Loss rate, month", f[9], "%", None, "", None, ""),
        KpiLine("Cashless share of paying customers", f[10], "%", None, "", None, ""),
        KpiLine("Cashless share of money paid", f[11], "%", None, "", None, ""),
    ]


def _open(settings: Settings, marts: Path | None):  # noqa: ANN202 - a DuckDB connection
    path = marts or settings.marts_path
    if not path.exists():
        raise MeterflowError(f"no published marts at {path}; run `meterflow run` first")
    return connect(settings, path, read_only=True)
