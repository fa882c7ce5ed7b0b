"""The management report: one self-contained HTML file regenerated from the published marts.

The file opens offline: styles are inline, charts are inline SVG drawn by matplotlib (glyphs as paths, so
no font is fetched either), and a Content-Security-Policy forbids every network load. The figures are read
unrounded from the marts and rounded only here, for reading. `--locale vi` writes numbers the Vietnamese
way (1.630.000.000 kWh; 2.285,95 đ/kWh) with Vietnamese labels.
"""

from __future__ import annotations

import html
import io
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from etl.duck import connect
from etl.errors import MeterflowError
from etl.settings import Settings
from etl.summary import KpiLine, company_kpis, latest_period

log = logging.getLogger(__name__)

LOCALES = ("en", "vi")
TEMPLATE = Path(__file__).with_name("template.html")
PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TOP_NODES = 20
DASH = "—"
VI_SEPARATORS = str.maketrans(",.", ".,")  # 1,234.5 -> 1.234,5

Number = float | Decimal | int

# Colours of the chart series: this year, last year, plan, a second series.
INK, PAST, PLAN, SECOND = "#1f5fa8", "#9db4cf", "#b03a2e", "#e08a1e"

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Management report",
        "subtitle": "{month} {year}: figures for the month and the year to date (January to {month})",
        "kpi_heading": "Key figures",
        "kpi_note": "Year to date is the ratio of the sums from January, never an average of monthly rates. "
        "Loss rate = (energy received - kWh sold) / energy received.",
        "charts_heading": "Trends",
        "regions_heading": "Regions, year to date",
        "nodes_heading": "Network nodes with the highest losses, year to date (top {n})",
        "nodes_note": "Feeders and distribution transformers ranked by lost kWh from January to the period "
        "(mart_energy_balance_monthly). A feeder's losses include those of its transformers.",
        "quality_heading": "Data quality the figures stand on",
        "quality_note": "The latest result of every check recorded in mart_data_quality "
        "({runs} pipeline runs; latest {run}).",
        "footer": "Regenerated from the published marts (warehouse/marts.duckdb) by meterflow. "
        "Figures are stored unrounded in the marts and rounded here for reading.",
        "figure": "Figure",
        "value": "Value",
        "vs_plan": "Against plan",
        "yoy": "Year on year",
        "kwh_sold_ytd": "Commercial electricity sold, year to date",
        "avg_price_ytd": "Average selling price, year to date",
        "loss_ytd": "Loss rate, year to date",
        "loss_month": "Loss rate, month",
        "cashless_customers": "Customers paying without cash",
        "cashless_amount": "Money paid without cash",
        "of_plan": "{x}% of plan",
        "pct_yoy": "{x}%",
        "region": "Region",
        "company": "Company",
        "kwh_sold": "kWh sold",
        "plan_attainment": "% of plan",
        "avg_price": "Average price",
        "loss_rate_ytd": "Loss rate YTD",
        "loss_vs_plan": "vs plan (pts)",
        "cashless": "Cashless customers",
        "node": "Node",
        "node_type": "Type",
        "kwh_in": "kWh in",
        "kwh_billed": "kWh billed",
        "loss_kwh": "Loss kWh",
        "loss_rate": "Loss rate",
        "loss_month_kwh": "Loss kWh, month",
        "estimated_share": "Estimated share",
        "stage": "Stage",
        "checks": "Checks",
        "passed": "Passed",
        "critical_failed": "Critical failed",
        "warnings_failed": "Warnings failed",
        "rows_checked": "Rows checked",
        "rows_failed": "Rows failed",
        "suite": "Suite",
        "description": "Description",
        "check": "Check",
        "severity": "Severity",
        "run": "Run",
        "failing_checks": "Checks that did not pass",
        "all_passed": "Every check passed.",
        "no_quality": "The marts hold no data-quality results.",
        "no_rows": "No rows for this period.",
        "chart_kwh": "kWh sold by month, {year} against {prev}",
        "chart_price": "Average selling price, {year}",
        "chart_loss": "Loss rate, {year}: month and year to date against plan",
        "chart_cashless": "Cashless payments, share by month",
        "million_kwh": "million kWh",
        "thousand_kwh": "thousand kWh",
        "vnd_per_kwh": "VND/kWh",
        "pct": "%",
        "month_series": "month",
        "ytd_series": "year to date",
        "plan_series": "plan",
        "ytd_prev_series": "year to date {prev}",
        "by_customers": "share of paying customers",
        "by_amount": "share of money paid",
        "kwh": "kWh",
        "price_unit": "VND/kWh",
        "vnd": "VND",
        "pts": "pts",
    },
    "vi": {
        "title": "Báo cáo kết quả kinh doanh điện năng",
        "subtitle": "Tháng {month_num}/{year}: số liệu tháng và lũy kế từ tháng 1 đến tháng {month_num}",
        "kpi_heading": "Các chỉ tiêu chính",
        "kpi_note": "Lũy kế là tỷ lệ của các tổng từ tháng 1, không phải trung bình các tỷ lệ tháng. "
        "Tỷ lệ tổn thất = (điện nhận đầu nguồn - điện thương phẩm) / điện nhận đầu nguồn.",
        "charts_heading": "Diễn biến theo tháng",
        "regions_heading": "Các điện lực khu vực, lũy kế",
        "nodes_heading": "Các nút lưới có tổn thất lớn nhất, lũy kế ({n} nút đứng đầu)",
        "nodes_note": "Xuất tuyến và trạm biến áp phân phối xếp theo điện năng tổn thất từ tháng 1 "
        "(mart_energy_balance_monthly). Tổn thất của xuất tuyến bao gồm tổn thất các trạm của nó.",
        "quality_heading": "Chất lượng dữ liệu làm căn cứ cho số liệu",
        "quality_note": "Kết quả mới nhất của từng phép kiểm tra trong mart_data_quality "
        "({runs} lần chạy; gần nhất {run}).",
        "footer": "Lập lại từ các bảng mart đã công bố (warehouse/marts.duckdb) bằng meterflow. "
        "Số liệu lưu chưa làm tròn, chỉ làm tròn khi trình bày.",
        "figure": "Chỉ tiêu",
        "value": "Thực hiện",
        "vs_plan": "So với kế hoạch",
        "yoy": "So với cùng kỳ",
        "kwh_sold_ytd": "Sản lượng điện thương phẩm lũy kế",
        "avg_price_ytd": "Giá bán bình quân lũy kế",
        "loss_ytd": "Tỷ lệ tổn thất điện năng lũy kế",
        "loss_month": "Tỷ lệ tổn thất điện năng tháng",
        "cashless_customers": "Thanh toán không dùng tiền mặt (theo khách hàng)",
        "cashless_amount": "Thanh toán không dùng tiền mặt (theo số tiền)",
        "of_plan": "đạt {x}% kế hoạch",
        "pct_yoy": "{x}%",
        "region": "Điện lực",
        "company": "Toàn công ty",
        "kwh_sold": "Điện thương phẩm (kWh)",
        "plan_attainment": "% kế hoạch",
        "avg_price": "Giá bán bình quân",
        "loss_rate_ytd": "Tổn thất lũy kế",
        "loss_vs_plan": "so với KH (điểm %)",
        "cashless": "KH không dùng tiền mặt",
        "node": "Nút lưới",
        "node_type": "Loại",
        "kwh_in": "Điện nhận (kWh)",
        "kwh_billed": "Điện thương phẩm (kWh)",
        "loss_kwh": "Tổn thất (kWh)",
        "loss_rate": "Tỷ lệ tổn thất",
        "loss_month_kwh": "Tổn thất tháng (kWh)",
        "estimated_share": "Tỷ lệ ước tính",
        "stage": "Công đoạn",
        "checks": "Số kiểm tra",
        "passed": "Đạt",
        "critical_failed": "Lỗi nghiêm trọng",
        "warnings_failed": "Cảnh báo",
        "rows_checked": "Số dòng kiểm tra",
        "rows_failed": "Số dòng lỗi",
        "suite": "Bộ kiểm tra",
        "description": "Mô tả",
        "check": "Phép kiểm tra",
        "severity": "Mức độ",
        "run": "Lần chạy",
        "failing_checks": "Các phép kiểm tra không đạt",
        "all_passed": "Tất cả các phép kiểm tra đều đạt.",
        "no_quality": "Các bảng mart chưa có kết quả kiểm tra chất lượng dữ liệu.",
        "no_rows": "Không có số liệu cho kỳ này.",
        "chart_kwh": "Điện thương phẩm theo tháng, {year} so với {prev}",
        "chart_price": "Giá bán bình quân, {year}",
        "chart_loss": "Tỷ lệ tổn thất điện năng {year}: tháng và lũy kế so với kế hoạch",
        "chart_cashless": "Thanh toán không dùng tiền mặt theo tháng",
        "million_kwh": "triệu kWh",
        "thousand_kwh": "nghìn kWh",
        "vnd_per_kwh": "đ/kWh",
        "pct": "%",
        "month_series": "tháng",
        "ytd_series": "lũy kế",
        "plan_series": "kế hoạch",
        "ytd_prev_series": "lũy kế {prev}",
        "by_customers": "theo khách hàng",
        "by_amount": "theo số tiền",
        "kwh": "kWh",
        "price_unit": "đ/kWh",
        "vnd": "đ",
        "pts": "điểm %",
    },
}

MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "vi": tuple(f"T{m}" for m in range(1, 13)),
}
MONTH_NAMES_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

# The lines of etl.summary.company_kpis, by their English figure, and the label key of each.
FIGURE_KEYS = {
    "kWh sold, year to date": "kwh_sold_ytd",
    "Average selling price, YTD": "avg_price_ytd",
    "Loss rate, year to date": "loss_ytd",
    "Loss rate, month": "loss_month",
    "Cashless share of paying customers": "cashless_customers",
    "Cashless share of money paid": "cashless_amount",
}


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


def format_number(value: Number | None, digits: int = 0, locale: str = "en", signed: bool = False) -> str:
    """`value` rounded to `digits` with thousands separators of the locale; '—' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if round(value, digits) == 0:
        value = 0  # no "-0.00"
    text = f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"
    if locale == "vi":
        text = text.translate(VI_SEPARATORS)
    return text


def check_period(period: str) -> str:
    """Return `period` when it is YYYY-MM. Raises MeterflowError otherwise."""
    if not PERIOD_PATTERN.match(period):
        raise MeterflowError(f"period must be YYYY-MM (e.g. 2025-09), not {period!r}")
    return period


def check_locale(locale: str) -> str:
    """Return `locale` when the report speaks it. Raises MeterflowError otherwise."""
    if locale not in LOCALES:
        raise MeterflowError(f"locale must be one of {', '.join(LOCALES)}, not {locale!r}")
    return locale


def default_output(settings: Settings, period: str, locale: str) -> Path:
    return settings.docs / "reports" / f"report_{period}_{locale}.html"


def write_report(
    settings: Settings,
    period: str | None = None,
    locale: str = "en",
    out: Path | None = None,
    marts: Path | None = None,
) -> Path:
    """Write the report of `period` (default: the latest) and return its path.

    Raises MeterflowError when the marts are missing or hold no company figures for the period, or when
    the period or locale is malformed.
    """
    check_locale(locale)
    period = check_period(period) if period else latest_period(settings, marts)
    data = load_report(settings, period, marts)
    target = out or default_output(settings, period, locale)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(render_html(data, locale), encoding="utf-8")
    os.replace(tmp, target)
    log.info("wrote the %s report of %s to %s", locale, period, target)
    return target


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
                   avg_price_ytd_vs_plan_vnd, loss_rate_pct, loss_rate_ytd_pct, loss_rate_ytd_vs_plan_pts,
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
    month_rate = float(now["loss_rate_pct"])
    plan = _plan_loss_rate(now)
    vs_plan = None if plan is None else month_rate - plan
    yoy = None if before is None or before["loss_rate_pct"] is None else month_rate - before["loss_rate_pct"]
    out = []
    for line in kpis:
        if FIGURE_KEYS.get(line.figure) == "loss_month":
            line = replace(line, vs_plan=vs_plan, vs_plan_unit="pts vs plan", yoy=yoy, yoy_unit="pts YoY")
        out.append(line)
    return out


def _plan_loss_rate(row: dict[str, Any]) -> float | None:
    """The year's LOSS_RATE target, recovered from a company row (rate minus its distance to plan)."""
    if row["loss_rate_ytd_pct"] is None or row["loss_rate_ytd_vs_plan_pts"] is None:
        return None
    return float(row["loss_rate_ytd_pct"]) - float(row["loss_rate_ytd_vs_plan_pts"])


def _plan_price(row: dict[str, Any]) -> float | None:
    """The year's AVG_PRICE target, recovered from a company row."""
    if row["avg_price_ytd_vnd_per_kwh"] is None or row["avg_price_ytd_vs_plan_vnd"] is None:
        return None
    return float(row["avg_price_ytd_vnd_per_kwh"]) - float(row["avg_price_ytd_vs_plan_vnd"])


# ---- rendering -----------------------------------------------------------------------------------------


def render_html(data: ReportData, locale: str = "en") -> str:
    """The report as one HTML document. Raises MeterflowError for an unknown locale."""
    t = LABELS[check_locale(locale)]
    year, month = data.year, data.month
    subtitle = t["subtitle"].format(month=MONTH_NAMES_EN[month - 1], month_num=month, year=year)
    page = Template(TEMPLATE.read_text(encoding="utf-8"))
    return page.substitute(
        lang=locale,
        title=_e(f"{t['title']} — {data.period}"),
        subtitle=_e(subtitle),
        kpi_heading=_e(t["kpi_heading"]),
        kpi_table=kpi_table(data.kpis, locale),
        kpi_note=_e(t["kpi_note"]),
        charts_heading=_e(t["charts_heading"]),
        charts="\n".join(render_charts(data, locale)),
        regions_heading=_e(t["regions_heading"]),
        regions_table=regions_table(data.regions, locale),
        nodes_heading=_e(t["nodes_heading"].format(n=TOP_NODES)),
        nodes_note=_e(t["nodes_note"]),
        nodes_table=nodes_table(data.nodes, locale),
        quality_heading=_e(t["quality_heading"]),
        quality_note=_e(t["quality_note"].format(runs=data.quality_runs, run=data.latest_run or DASH)),
        quality_tables=quality_tables(data, locale),
        footer=_e(t["footer"]),
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    classes: Sequence[str],
    css: str = "",
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table of already formatted cells; `classes` gives each column's CSS class ("num": right)."""
    head = "".join(
        f'<th class="{c}">{_e(h)}</th>' if c else f"<th>{_e(h)}</th>"
        for h, c in zip(headers, classes, strict=True)
    )
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="{c}">{_e(v)}</td>' if c else f"<td>{_e(v)}</td>"
            for v, c in zip(row, classes, strict=True)
        )
        tr_class = row_classes[i] if row_classes else ""
        body.append(f'<tr class="{tr_class}">{cells}</tr>' if tr_class else f"<tr>{cells}</tr>")
    table_class = f' class="{css}"' if css else ""
    table = f"<table{table_class}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'


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
        _comparison(line.vs_plan, line.vs_plan_unit, locale),
        _comparison(line.yoy, line.yoy_unit, locale),
    )


def _comparison(value: float | None, unit: str, locale: str) -> str:
    """A comparison cell: '78.1% of plan', '+2.9%', '+8.95 VND/kWh', '-1.04 pts'."""
    t = LABELS[locale]
    if value is None:
        return DASH
    if unit == "% of plan":
        return t["of_plan"].format(x=format_number(value, 1, locale))
    if unit.startswith("%"):
        return t["pct_yoy"].format(x=format_number(value, 1, locale, signed=True))
    if unit.startswith("VND"):
        return f"{format_number(value, 2, locale, signed=True)} {t['price_unit']}"
    return f"{format_number(value, 2, locale, signed=True)} {t['pts']}"


def kpi_table(kpis: Sequence[KpiLine], locale: str) -> str:
    t = LABELS[locale]
    rows = [kpi_cells(line, locale) for line in kpis]
    headers = (t["figure"], t["value"], t["vs_plan"], t["yoy"])
    return html_table(headers, rows, ("", "num value", "num", "num"), css="kpi")


def regions_table(regions: Sequence[dict[str, Any]], locale: str) -> str:
    t = LABELS[locale]
    if not regions:
        return f"<p>{_e(t['no_rows'])}</p>"
    rows = []
    for r in regions:
        rows.append(
            (
                t["company"] if r["region_code"] == "ALL" else str(r["region_code"]),
                format_number(r["kwh_sold_ytd"], 0, locale),
                format_number(r["plan_attainment_pct"], 1, locale),
                format_number(r["kwh_sold_ytd_yoy_pct"], 1, locale, signed=True),
                format_number(r["avg_price_ytd_vnd_per_kwh"], 2, locale),
                format_number(r["loss_rate_ytd_pct"], 2, locale),
                format_number(r["loss_rate_ytd_vs_plan_pts"], 2, locale, signed=True),
                format_number(r["cashless_customer_pct"], 1, locale),
            )
        )
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
    totals = ["total" if r["region_code"] == "ALL" else "" for r in regions]
    return html_table(headers, rows, ("",) + ("num",) * 7, css="regions", row_classes=totals)


def nodes_table(nodes: Sequence[dict[str, Any]], locale: str) -> str:
    t = LABELS[locale]
    if not nodes:
        return f"<p>{_e(t['no_rows'])}</p>"
    rows = [
        (
            str(i),
            str(n["node_id"]),
            str(n["node_type"]),
            str(n["region_code"]),
            format_number(n["kwh_in"], 0, locale),
            format_number(n["kwh_billed"], 0, locale),
            format_number(n["loss_kwh"], 0, locale),
            format_number(n["loss_rate_pct"], 2, locale),
            format_number(n["loss_kwh_month"], 0, locale),
            format_number(n["estimated_share_pct"], 1, locale),
        )
        for i, n in enumerate(nodes, start=1)
    ]
    headers = (
        "#",
        t["node"],
        t["node_type"],
        t["region"],
        t["kwh_in"],
        t["kwh_billed"],
        t["loss_kwh"],
        f"{t['loss_rate']} (%)",
        t["loss_month_kwh"],
        f"{t['estimated_share']} (%)",
    )
    return html_table(headers, rows, ("num", "", "", "") + ("num",) * 6, css="nodes")


def quality_tables(data: ReportData, locale: str) -> str:
    t = LABELS[locale]
    if not data.quality_by_stage:
        return f"<p>{_e(t['no_quality'])}</p>"
    stage_rows = [
        (
            str(s["stage"]),
            format_number(s["checks"], 0, locale),
            format_number(s["passed"], 0, locale),
            format_number(s["critical_failed"], 0, locale),
            format_number(s["warnings_failed"], 0, locale),
            format_number(s["rows_checked"], 0, locale),
            format_number(s["rows_failed"], 0, locale),
        )
        for s in data.quality_by_stage
    ]
    parts = [
        html_table(
            (
                t["stage"],
                t["checks"],
                t["passed"],
                t["critical_failed"],
                t["warnings_failed"],
                t["rows_checked"],
                t["rows_failed"],
            ),
            stage_rows,
            ("",) + ("num",) * 6,
            css="quality",
        )
    ]
    if not data.quality_failures:
        parts.append(f'<p class="pass">{_e(t["all_passed"])}</p>')
        return "\n".join(parts)
    fail_rows = [
        (
            str(f["stage"]),
            str(f["suite"]),
            str(f["check_name"]),
            str(f["description"] or ""),
            str(f["severity"]),
            format_number(f["rows_failed"], 0, locale),
            format_number(f["rows_checked"], 0, locale),
        )
        for f in data.quality_failures
    ]
    parts.append(f"<h3>{_e(t['failing_checks'])}</h3>")
    parts.append(
        html_table(
            (
                t["stage"],
                t["suite"],
                t["check"],
                t["description"],
                t["severity"],
                t["rows_failed"],
                t["rows_checked"],
            ),
            fail_rows,
            ("", "", "", "", "", "num", "num"),
            css="failures",
            row_classes=["fail" if f["severity"] == "critical" else "" for f in data.quality_failures],
        )
    )
    return "\n".join(parts)


# ---- charts --------------------------------------------------------------------------------------------


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
    plan = _plan_price(data.company[-1]) if data.company else None
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
    plan = _plan_loss_rate(data.company[-1]) if data.company else None
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
    step = max(1, len(periods) // 8)
    ticks = x[::-1][::step][::-1]
    ax.set_xticks(ticks, [f"{periods[i][5:7]}/{periods[i][2:4]}" for i in ticks])
    ax.set_ylabel(t["pct"])
    _axis_format(ax, locale, 1)
    _legend(ax)
    return t["chart_cashless"]


CHARTS: tuple[tuple[str, Callable[[ReportData, str, Figure], str]], ...] = (
    ("kwh", chart_kwh),
    ("price", chart_price),
    ("loss", chart_loss),
    ("cashless", chart_cashless),
)


def render_charts(data: ReportData, locale: str) -> list[str]:
    """Each chart as a <figure> holding an inline SVG."""
    out = []
    style = {
        "svg.fonttype": "path",  # glyphs as paths: the SVG needs no font on the reader's machine
        "svg.hashsalt": "meterflow",  # stable ids, so the same marts give the same file
        "font.family": "DejaVu Sans",
        "font.size": 9,
    }
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        for chart_id, draw in CHARTS:
            fig = Figure(figsize=(6.4, 3.3), layout="constrained")
            title = draw(data, locale, fig)
            out.append(_figure(chart_id, title, _svg(fig, f"chart-{chart_id}")))
    return out


def _svg(fig: Figure, chart_id: str) -> str:
    """The figure as an inline <svg> whose ids are prefixed by `chart_id` (several share one page)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "meterflow"})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{chart_id}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{chart_id}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{chart_id}-\1)", text)
    # Size comes from the page's CSS; the viewBox keeps the proportions.
    text = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r"<svg\1", text, count=1)
    return text.replace("<svg", f'<svg class="chart" id="{chart_id}" role="img"', 1)


def _figure(chart_id: str, title: str, svg: str) -> str:
    svg = svg.replace(">", f"><title>{_e(title)}</title>", 1)
    return f'<figure data-chart="{chart_id}"><figcaption>{_e(title)}</figcaption>{svg}</figure>'
