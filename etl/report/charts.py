"""The report's charts: matplotlib figures drawn as inline SVG, with glyphs as paths so no font is fetched."""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from etl.report.data import ReportData
from etl.report.labels import LABELS, MONTHS, format_number

# Colours of the chart series: this year, last year, plan, a second series.
INK, PAST, PLAN, SECOND = "#1f5fa8", "#9db4cf", "#b03a2e", "#e08a1e"


@dataclass(frozen=True)
class Chart:
    """One drawn chart: its id, its title and the inline <svg> that matplotlib wrote."""

    chart_id: str
    title: str
    svg: str


def _series(
    rows: Sequence[dict[str, Any]], year: int, column: str, scale: float = 1.0
) -> tuple[list[int], list[float]]:
    """Months (1-12) and values of `column` in the company rows of `year`; NULL becomes NaN (a gap)."""
    months, values = [], []
    for r in rows:
        if int(r["period"][:4]) == year:
            months.append(int(r["period"][5:7]))
            v = r[column]
            values.append(math.nan if v is None else float(v) / scale)
    return months, values


def _axis_format(ax: Any, locale: str, digits: int) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_number(v, digits, locale)))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.grid(axis="y", color="#e3e8ee", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(ax: Any) -> None:
    """One row of legend above the plot, where it never hides a bar or a point."""
    handles, _labels = ax.get_legend_handles_labels()
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(handles), frameon=False, fontsize=8)


def _month_axis(ax: Any, locale: str) -> None:
    ax.set_xticks(range(1, 13), MONTHS[locale])
    ax.set_xlim(0.4, 12.6)


def _kwh_scale(rows: Sequence[dict[str, Any]]) -> tuple[float, str]:
    """The unit of the kWh axis: millions for a company, thousands or plain kWh for a small one."""
    largest = max((abs(float(r["kwh_sold"])) for r in rows if r["kwh_sold"] is not None), default=0.0)
    if largest >= 10e6:
        return 1e6, "million_kwh"
    if largest >= 10e3:
        return 1e3, "thousand_kwh"
    return 1.0, ""


def chart_kwh(data: ReportData, locale: str, fig: Figure) -> str:
    t = LABELS[locale]
    ax = fig.subplots()
    scale, unit = _kwh_scale(data.company)
    m_now, v_now = _series(data.company, data.year, "kwh_sold", scale)
    m_prev, v_prev = _series(data.company, data.year - 1, "kwh_sold", scale)
    ax.bar([m + 0.2 for m in m_now], v_now, width=0.4, color=INK, label=str(data.year))
    if m_prev:
        ax.bar([m - 0.2 for m in m_prev], v_prev, width=0.4, color=PAST, label=str(data.year - 1))
    ax.set_ylabel(t[unit] if unit else t["kwh"])
    _month_axis(ax, locale)
    _axis_format(ax, locale, 0)
    _legend(ax)
    return t["chart_kwh"].format(year=data.year, prev=data.year - 1)


def chart_price(data: ReportData, locale: str, fig: Figure) -> str:
    t = LABELS[locale]
    ax = fig.subplots()
    m, monthly = _series(data.company, data.year, "avg_price_vnd_per_kwh")
    _, ytd = _series(data.company, data.year, "avg_price_ytd_vnd_per_kwh")
    m_prev, ytd_prev = _series(data.company, data.year - 1, "avg_price_ytd_vnd_per_kwh")
    ax.plot(m, monthly, marker="o", color=SECOND, label=t["month_series"])
    ax.plot(m, ytd, marker="o", color=INK, linewidth=2.2, label=t["ytd_series"])
    if m_prev:
        ax.plot(m_prev, ytd_prev, color=PAST, label=t["ytd_prev_series"].format(prev=data.year - 1))
    plan = _plan(data, "plan_avg_price_vnd_per_kwh")
    if plan is not None:
        ax.axhline(plan, color=PLAN, linestyle="--", linewidth=1.4, label=t["plan_series"])
    ax.set_ylabel(t["vnd_per_kwh"])
    _month_axis(ax, locale)
    _axis_format(ax, locale, 0)
    _legend(ax)
    return t["chart_price"].format(year=data.year)


def chart_loss(data: ReportData, locale: str, fig: Figure) -> str:
    t = LABELS[locale]
    ax = fig.subplots()
    m, monthly = _series(data.company, data.year, "loss_rate_pct")
    _, ytd = _series(data.company, data.year, "loss_rate_ytd_pct")
    m_prev, ytd_prev = _series(data.company, data.year - 1, "loss_rate_ytd_pct")
    ax.bar(m, monthly, width=0.6, color="#b9cbe0", label=t["month_series"])
    ax.plot(m, ytd, marker="o", color=INK, linewidth=2.2, label=t["ytd_series"])
    if m_prev:
        ax.plot(m_prev, ytd_prev, color="#7d8b99", label=t["ytd_prev_series"].format(prev=data.year - 1))
    plan = _plan(data, "plan_loss_rate_pct")
    if plan is not None:
        ax.axhline(plan, color=PLAN, linestyle="--", linewidth=1.4, label=t["plan_series"])
    ax.axhline(0, color="#555", linewidth=0.6)
    ax.set_ylabel(t["pct"])
    _month_axis(ax, locale)
    _axis_format(ax, locale, 1)
    _legend(ax)
    return t["chart_loss"].format(year=data.year)


def chart_cashless(data: ReportData, locale: str, fig: Figure) -> str:
    t = LABELS[locale]
    ax = fig.subplots()
    periods = [r["period"] for r in data.company]
    x = list(range(len(periods)))
    for column, colour, label in (
        ("cashless_customer_pct", INK, t["by_customers"]),
        ("cashless_amount_pct", SECOND, t["by_amount"]),
    ):
        values = [math.nan if r[column] is None else float(r[column]) for r in data.company]
        ax.plot(x, values, marker="o", markersize=3, color=colour, label=label)
    _month_ticks(ax, periods)
    ax.set_ylabel(t["pct"])
    _axis_format(ax, locale, 1)
    _legend(ax)
    return t["chart_cashless"]


def _month_ticks(ax: Any, periods: Sequence[str]) -> None:
    """Ticks 'MM/YY' on at most about eight of the positions 0..n-1, the last period always among them."""
    step = max(1, len(periods) // 8)
    ticks = list(range(len(periods)))[::-1][::step][::-1]
    ax.set_xticks(ticks, [f"{periods[i][5:7]}/{periods[i][2:4]}" for i in ticks])


def chart_requests(data: ReportData, locale: str, fig: Figure) -> str:
    t = LABELS[locale]
    ax = fig.subplots()
    rows = data.operations.service if data.operations else []
    periods = [r["period"] for r in rows]
    x = list(range(len(periods)))
    ax.bar([i - 0.2 for i in x], [r["requests_received"] for r in rows], width=0.4, color=INK,
           label=t["requests_received_series"])  # fmt: skip
    ax.bar([i + 0.2 for i in x], [r["requests_resolved"] for r in rows], width=0.4, color=PAST,
           label=t["requests_resolved_series"])  # fmt: skip
    _month_ticks(ax, periods)
    ax.set_ylabel(t["requests"])
    _axis_format(ax, locale, 0)
    _legend(ax)
    return t["chart_requests"]


def chart_inspections(data: ReportData, locale: str, fig: Figure) -> str:
    t = LABELS[locale]
    ax = fig.subplots()
    rows = data.operations.inspections if data.operations else []
    periods = [r["period"] for r in rows]
    x = list(range(len(periods)))
    ax.bar(x, [r["inspections"] for r in rows], width=0.6, color="#b9cbe0", label=t["inspections_series"])
    ax.set_ylabel(t["inspections"])
    _month_ticks(ax, periods)
    _axis_format(ax, locale, 0)
    rate = ax.twinx()
    hits = [math.nan if r["hit_rate_pct"] is None else float(r["hit_rate_pct"]) for r in rows]
    rate.plot(x, hits, marker="o", markersize=3, color=PLAN, label=t["hit_rate_series"])
    rate.set_ylim(bottom=0)
    rate.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_number(v, 1, locale)))
    rate.spines["top"].set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, frameon=False, fontsize=8)
    return t["chart_inspections"]


CHARTS: tuple[tuple[str, Callable[[ReportData, str, Figure], str]], ...] = (
    ("kwh", chart_kwh),
    ("price", chart_price),
    ("loss", chart_loss),
    ("cashless", chart_cashless),
)
# Drawn when the marts hold operations data.
OPERATIONS_CHARTS: tuple[tuple[str, Callable[[ReportData, str, Figure], str]], ...] = (
    ("requests", chart_requests),
    ("inspections", chart_inspections),
)


def render_charts(data: ReportData, locale: str) -> list[Chart]:
    """Each chart of the report, drawn for `locale`."""
    out = []
    style = {
        "svg.fonttype": "path",  # glyphs as paths: the SVG needs no font on the reader's machine
        "svg.hashsalt": "meterflow",  # stable ids, so the same marts give the same file
        "font.family": "DejaVu Sans",
        "font.size": 9,
    }
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        for chart_id, draw in (*CHARTS, *(OPERATIONS_CHARTS if data.operations else ())):
            fig = Figure(figsize=(6.4, 3.3), layout="constrained")
            title = draw(data, locale, fig)
            out.append(Chart(chart_id, title, _svg(fig, f"chart-{chart_id}", title)))
    return out


def _svg(fig: Figure, chart_id: str, title: str) -> str:
    """The figure as an inline <svg> titled `title`, its ids prefixed by `chart_id` (several share a page)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "meterflow"})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{chart_id}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{chart_id}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{chart_id}-\1)", text)
    # Size comes from the page's CSS; the viewBox keeps the proportions.
    text = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r"<svg\1", text, count=1)
    text = text.replace("<svg", f'<svg class="chart" id="{chart_id}" role="img"', 1)
    return text.replace(">", f"><title>{html.escape(title)}</title>", 1)


def _plan(data: ReportData, column: str) -> float | None:
    """The period's plan target in `column` of the company row (NULL without a plan)."""
    value = data.company[-1][column] if data.company else None
    return None if value is None else float(value)
