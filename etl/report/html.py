"""The report as one HTML document: formatted tables and charts rendered by the Jinja2 template.

The page opens offline: styles are inline, charts are inline SVG, and a Content-Security-Policy forbids
every network load. The template escapes every text it is given; only the charts' SVG goes in as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from etl.report.charts import render_charts
from etl.report.data import TOP_NODES, Operations, ReportData
from etl.report.labels import (
    CHANNEL_NAMES,
    DASH,
    FIGURE_KEYS,
    LABELS,
    MONTH_NAMES_EN,
    REQUEST_TYPE_NAMES,
    check_locale,
    comparison,
    dataset_name,
    enum_name,
    format_number,
)
from etl.report.loss_hunting import loss_hunting_tables
from etl.summary import KpiLine

TEMPLATE = "template.html"


@dataclass(frozen=True)
class Table:
    """A table of formatted cells; `classes` gives each column's CSS class ("num": right-aligned)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    classes: Sequence[str]
    css: str = ""
    row_classes: Sequence[str] = ()


@cache
def _template() -> Template:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE)


def render_html(data: ReportData, locale: str = "en") -> str:
    """The report as one HTML document. Raises MeterflowError for an unknown locale."""
    t = LABELS[check_locale(locale)]
    month = data.month
    return _template().render(
        lang=locale,
        t=t,
        title=f"{t['title']} — {data.period}",
        subtitle=t["subtitle"].format(month=MONTH_NAMES_EN[month - 1], month_num=month, year=data.year),
        kpi_table=kpi_table(data.kpis, locale),
        charts=render_charts(data, locale),
        regions_table=regions_table(data.regions, locale),
        nodes_note=t["nodes_note"].format(n=TOP_NODES),
        feeders_table=nodes_table(data.feeders, locale),
        dts_table=nodes_table(data.dts, locale),
        quality_note=t["quality_note"].format(latest=data.latest_check or DASH),
        quality_table=quality_table(data, locale),
        failures_table=failures_table(data, locale),
        other_files=t["other_files"].format(n=data.quality_other_files) if data.quality_other_files else "",
        operations=operations_tables(data.operations, locale),
        loss_hunting=loss_hunting_tables(data.loss_hunting, locale),
    )


def kpi_cells(line: KpiLine, locale: str) -> tuple[str, str, str, str]:
    """The four cells of one KPI line (figure, value, against plan, year on year), formatted."""
    t = LABELS[locale]
    key = FIGURE_KEYS.get(line.figure)
    label = t[key] if key else line.figure
    if line.unit == "kWh":
        value = f"{format_number(line.value, 0, locale)} {t['kwh']}"
    elif line.unit == "VND/kWh":
        value = f"{format_number(line.value, 2, locale)} {t['price_unit']}"
    else:
        digits = 1 if key and key.startswith("cashless") else 2
        value = f"{format_number(line.value, digits, locale)}%"
    return (
        label,
        value,
        comparison(line.vs_plan, line.vs_plan_unit, locale),
        comparison(line.yoy, line.yoy_unit, locale),
    )


def kpi_table(kpis: Sequence[KpiLine], locale: str) -> Table:
    t = LABELS[locale]
    return Table(
        headers=(t["figure"], t["value"], t["vs_plan"], t["yoy"]),
        rows=[kpi_cells(line, locale) for line in kpis],
        classes=("", "num value", "num", "num"),
        css="kpi",
    )


def regions_table(regions: Sequence[dict[str, Any]], locale: str) -> Table | None:
    """Each region's year-to-date figures, then the company's; None when the period has no rows."""
    t = LABELS[locale]
    headers = (
        t["region"],
        t["kwh_sold"],
        t["plan_attainment"],
        f"{t['yoy']} (%)",
        f"{t['avg_price']} ({t['price_unit']})",
        f"{t['loss_rate_ytd']} (%)",
        t["loss_vs_plan"],
        f"{t['cashless']} (%)",
    )
    return _by_region(
        regions,
        headers,
        lambda r: (
            format_number(r["kwh_sold_ytd"], 0, locale),
            format_number(r["plan_attainment_pct"], 1, locale),
            format_number(r["kwh_sold_ytd_yoy_pct"], 1, locale, signed=True),
            format_number(r["avg_price_ytd_vnd_per_kwh"], 2, locale),
            format_number(r["loss_rate_ytd_pct"], 2, locale),
            format_number(r["loss_rate_ytd_vs_plan_pts"], 2, locale, signed=True),
            format_number(r["cashless_customer_pct"], 1, locale),
        ),
        "regions",
        locale,
    )


def _by_region(
    regions: Sequence[dict[str, Any]],
    headers: Sequence[str],
    cells: Callable[[dict[str, Any]], Sequence[str]],
    css: str,
    locale: str,
) -> Table | None:
    """A table of one row per region, the company's ('ALL') last and bold; None without rows."""
    if not regions:
        return None
    company = LABELS[locale]["company"]
    rows = [
        (company if r["region_code"] == "ALL" else str(r.get("region_name") or r["region_code"]), *cells(r))
        for r in regions
    ]
    row_classes = ["total" if r["region_code"] == "ALL" else "" for r in regions]
    return Table(headers, rows, ("",) + ("num",) * (len(headers) - 1), css, row_classes)


def nodes_table(nodes: Sequence[dict[str, Any]], locale: str) -> Table | None:
    """Nodes of one type ranked by lost kWh from January, with the change of their loss rate against the
    same months a year earlier; None when there are none."""
    t = LABELS[locale]
    if not nodes:
        return None
    rows = [
        (
            str(i),
            str(n["node_id"]),
            str(n["region_name"] or n["region_code"]),
            format_number(n["kwh_in"], 0, locale),
            format_number(n["kwh_billed"], 0, locale),
            format_number(n["loss_kwh"], 0, locale),
            format_number(n["loss_rate_pct"], 2, locale),
            format_number(n["loss_rate_last_year_pct"], 2, locale),
            format_number(
                _difference(n["loss_rate_pct"], n["loss_rate_last_year_pct"]), 2, locale, signed=True
            ),
        )
        for i, n in enumerate(nodes, start=1)
    ]
    headers = (
        "#",
        t["node"],
        t["region"],
        t["kwh_in"],
        t["kwh_billed"],
        t["loss_kwh"],
        f"{t['loss_rate']} (%)",
        t["loss_rate_last_year"],
        t["loss_rate_change"],
    )
    return Table(headers=headers, rows=rows, classes=("num", "id", "name") + ("num",) * 6, css="nodes")


def _difference(value: Any, other: Any) -> float | None:
    if value is None or other is None:
        return None
    return float(value) - float(other)


def quality_table(data: ReportData, locale: str) -> Table | None:
    """Per dataset, the latest results of its checks; None when the marts hold no quality results."""
    t = LABELS[locale]
    if not data.quality_by_dataset:
        return None
    rows = [
        (
            dataset_name(str(d["dataset"]), locale),
            format_number(d["checks"], 0, locale),
            format_number(d["passed"], 0, locale),
            format_number(d["warnings_failed"], 0, locale),
            format_number(d["critical_failed"], 0, locale),
            format_number(d["rows_in_lake"], 0, locale),
            format_number(d["rows_quarantined"], 0, locale),
            format_number(d["files_with_quarantine"], 0, locale),
        )
        for d in data.quality_by_dataset
    ]
    headers = (
        t["dataset"],
        t["checks"],
        t["passed"],
        t["warnings_failed"],
        t["critical_failed"],
        t["rows_in_lake"],
        t["rows_quarantined"],
        t["files_with_quarantine"],
    )
    return Table(
        headers=headers,
        rows=rows,
        classes=("",) + ("num",) * 7,
        css="quality",
        row_classes=["fail" if d["critical_failed"] else "" for d in data.quality_by_dataset],
    )


def failures_table(data: ReportData, locale: str) -> Table | None:
    """The appendix: the checks whose latest result did not pass, critical first; None when none."""
    t = LABELS[locale]
    if not data.quality_failures:
        return None
    rows = [
        (
            dataset_name(str(f["dataset"]), locale),
            str(f["file"] or f["check_name"]),
            str(f["description"] or ""),
            t.get(str(f["severity"]), str(f["severity"])),
            format_number(f["rows_failed"], 0, locale),
            format_number(f["rows_checked"], 0, locale),
        )
        for f in data.quality_failures
    ]
    headers = (t["dataset"], t["check"], t["description"], t["severity"], t["rows_failed"], t["rows_checked"])
    return Table(
        headers=headers,
        rows=rows,
        classes=("", "", "", "", "num", "num"),
        css="failures",
        row_classes=["fail" if f["severity"] == "critical" else "" for f in data.quality_failures],
    )


def operations_tables(ops: Operations | None, locale: str) -> dict[str, Table | None] | None:
    """The tables of the report's second half; None when the marts hold no operations data."""
    if ops is None:
        return None
    return {
        "service": service_table(ops.service_regions, locale),
        "by_type": mix_table(ops.by_type, "request_type", REQUEST_TYPE_NAMES, locale),
        "by_channel": mix_table(ops.by_channel, "channel", CHANNEL_NAMES, locale),
        "inspections": inspections_table(ops.inspection_regions, locale),
    }


def service_table(regions: Sequence[dict[str, Any]], locale: str) -> Table | None:
    """Each region's requests of the period and the year to date, then the company's."""
    t = LABELS[locale]
    headers = (
        t["region"],
        t["received_month"],
        t["received_ytd"],
        t["resolved_ytd"],
        t["on_time_ytd"],
        t["backlog"],
        t["overdue"],
        t["escalated_ytd"],
    )
    return _by_region(
        regions,
        headers,
        lambda r: (
            format_number(r["requests_received"], 0, locale),
            format_number(r["requests_received_ytd"], 0, locale),
            format_number(r["resolved_ytd"], 0, locale),
            format_number(r["on_time_ytd_pct"], 1, locale),
            format_number(r["backlog_end"], 0, locale),
            format_number(r["overdue_end"], 0, locale),
            format_number(r["escalated_ytd"], 0, locale),
        ),
        "service",
        locale,
    )


def mix_table(
    rows: Sequence[dict[str, Any]], kind: str, names: dict[str, dict[str, str]], locale: str
) -> Table | None:
    """Requests of the year to date by type or by channel, the most frequent first."""
    t = LABELS[locale]
    if not rows:
        return None
    cells = [
        (
            enum_name(names, str(r["name"]), locale),
            format_number(r["received"], 0, locale),
            format_number(r["share_pct"], 1, locale),
            format_number(r["resolved"], 0, locale),
            format_number(r["on_time_pct"], 1, locale),
        )
        for r in rows
    ]
    headers = (t[kind], t["received"], t["share"], t["resolved"], t["on_time"])
    return Table(headers, cells, ("", "num", "num", "num", "num"), "mix")


def inspections_table(regions: Sequence[dict[str, Any]], locale: str) -> Table | None:
    """Each region's inspections of the period and the year to date, then the company's."""
    t = LABELS[locale]
    headers = (
        t["region"],
        t["inspections_month"],
        t["inspections_ytd"],
        t["violations_ytd"],
        t["hit_rate_ytd"],
        t["recovered_ytd"],
        t["per_violation"],
    )
    return _by_region(
        regions,
        headers,
        lambda r: (
            format_number(r["inspections"], 0, locale),
            format_number(r["inspections_ytd"], 0, locale),
            format_number(r["violations_ytd"], 0, locale),
            format_number(r["hit_rate_ytd_pct"], 2, locale),
            format_number(r["recovered_vnd_ytd"], 0, locale),
            format_number(r["recovered_vnd_per_violation"], 0, locale),
        ),
        "inspections",
        locale,
    )
