"""The report's words and numbers: English and Vietnamese texts, and numbers written the locale's way.

Vietnamese writes thousands with dots and decimals with a comma (1.630.000.000 kWh; 2.285,95 đ/kWh).
"""

from __future__ import annotations

import math
from decimal import Decimal

from etl.errors import MeterflowError

LOCALES = ("en", "vi")
DASH = "—"
VI_SEPARATORS = str.maketrans(",.", ".,")  # 1,234.5 -> 1.234,5

Number = float | Decimal | int

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Management report",
        "subtitle": "{month} {year}: figures for the month and the year to date (January to {month})",
        "kpi_heading": "Key figures",
        "kpi_note": "Year to date is the ratio of the sums from January, never an average of monthly rates. "
        "Loss rate = (energy received - kWh sold) / energy received.",
        "charts_heading": "Trends",
        "regions_heading": "Regions, year to date",
        "nodes_heading": "Where the energy is lost, year to date",
        "nodes_note": "The feeders and the distribution transformers with the most lost kWh from January "
        "(up to {n} of each), ranked apart (a feeder's losses include those of its transformers). The last "
        "columns compare the loss rate with the same months a year earlier: a rising rate is where "
        "inspections pay first. Calendar-month energy against billing-period sales, as the company's rate.",
        "feeders_heading": "Feeders",
        "dts_heading": "Distribution transformers",
        "loss_rate_last_year": "Same months last year (%)",
        "loss_rate_change": "Change (pts)",
        "quality_heading": "Data quality the figures stand on",
        "quality_note": "Every check of the data behind this report, counted by dataset (the latest result "
        "of each; latest check {latest} UTC). Rows set aside are quarantined at ingestion with their "
        "reason and counted in no figure; the appendix lists each check that did not pass.",
        "dataset": "Data",
        "rows_in_lake": "Rows accepted",
        "rows_quarantined": "Rows set aside",
        "files_with_quarantine": "Files with rows set aside",
        "appendix_heading": "Appendix: checks that did not pass",
        "appendix_note": "For the data team: each check whose latest result did not pass, the files of this "
        "period among them.",
        "other_files": "{n} more files of other periods had rows set aside; mart_data_quality lists them.",
        "critical": "critical",
        "warning": "warning",
        "loss_month_note": "The month's loss rate sets the energy received in the calendar month against the "
        "kWh of the billing period, whose meter readings fall on other days; a single month can therefore be "
        "negative or high. The year-to-date rate evens this out.",
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
        "service_heading": "Customer service, year to date",
        "service_note": "Requests by their latest state (mart_service_monthly). On time: resolved at or "
        "before the service-level deadline. Backlog and overdue: requests still open at the month's end.",
        "received_month": "Received, month",
        "received_ytd": "Received YTD",
        "resolved_ytd": "Resolved YTD",
        "on_time_ytd": "On time YTD (%)",
        "backlog": "Backlog at month end",
        "overdue": "of which overdue",
        "escalated_ytd": "Escalated YTD",
        "by_type_heading": "Requests by type, year to date",
        "by_channel_heading": "Requests by channel, year to date",
        "request_type": "Request type",
        "channel": "Channel",
        "received": "Received",
        "share": "Share (%)",
        "resolved": "Resolved",
        "on_time": "On time (%)",
        "inspections_heading": "Inspections of electricity use, year to date",
        "inspections_note": "On-site inspections by their latest state (mart_inspections_monthly); "
        "recovered amounts are back-billed, excluding VAT.",
        "inspections_month": "Inspections, month",
        "inspections_ytd": "Inspections YTD",
        "violations_ytd": "Violations YTD",
        "hit_rate_ytd": "Hit rate YTD (%)",
        "recovered_ytd": "Recovered YTD (VND)",
        "per_violation": "Per violation (VND)",
        "no_operations": "The marts hold no service requests or inspections for this period.",
        "chart_requests": "Customer requests by month",
        "chart_inspections": "Inspections by month and the share that found a violation",
        "requests_received_series": "received",
        "requests_resolved_series": "resolved",
        "inspections_series": "inspections",
        "hit_rate_series": "hit rate (%)",
        "requests": "requests",
        "inspections": "inspections",
    },
    "vi": {
        "title": "Báo cáo kết quả kinh doanh điện năng",
        "subtitle": "Tháng {month_num}/{year}: số liệu tháng và lũy kế từ tháng 1 đến tháng {month_num}",
        "kpi_heading": "Các chỉ tiêu chính",
        "kpi_note": "Lũy kế là tỷ lệ của các tổng từ tháng 1, không phải trung bình các tỷ lệ tháng. "
        "Tỷ lệ tổn thất = (điện nhận đầu nguồn - điện thương phẩm) / điện nhận đầu nguồn.",
        "charts_heading": "Diễn biến theo tháng",
        "regions_heading": "Các điện lực khu vực, lũy kế",
        "nodes_heading": "Tổn thất điện năng theo nút lưới, lũy kế",
        "nodes_note": "Tối đa {n} xuất tuyến và {n} trạm biến áp phân phối có điện năng tổn thất lớn nhất "
        "từ tháng 1, xếp hạng riêng (tổn thất của xuất tuyến bao gồm tổn thất các trạm của nó). Các cột "
        "cuối so sánh tỷ lệ tổn thất với cùng kỳ năm trước: nơi tỷ lệ tăng là nơi nên ưu tiên kiểm tra. "
        "Điện nhận theo tháng dương lịch so với điện thương phẩm theo kỳ hóa đơn, như tỷ lệ toàn công ty.",
        "feeders_heading": "Xuất tuyến",
        "dts_heading": "Trạm biến áp phân phối",
        "loss_rate_last_year": "Cùng kỳ năm trước (%)",
        "loss_rate_change": "Tăng/giảm (điểm %)",
        "quality_heading": "Chất lượng dữ liệu làm căn cứ cho số liệu",
        "quality_note": "Mọi phép kiểm tra dữ liệu của báo cáo này, tính theo loại dữ liệu (kết quả mới "
        "nhất của từng phép; lần kiểm tra gần nhất {latest} UTC). Dòng bị loại được cách ly khi nhập kèm "
        "lý do và không tính vào số liệu nào; phụ lục liệt kê từng phép kiểm tra không đạt.",
        "dataset": "Dữ liệu",
        "rows_in_lake": "Số dòng nhận",
        "rows_quarantined": "Số dòng bị loại",
        "files_with_quarantine": "Số tệp có dòng bị loại",
        "appendix_heading": "Phụ lục: các phép kiểm tra không đạt",
        "appendix_note": "Dành cho bộ phận dữ liệu: từng phép kiểm tra có kết quả mới nhất không đạt, trong "
        "đó có các tệp của kỳ này.",
        "other_files": "Còn {n} tệp của các kỳ khác có dòng bị loại; bảng mart_data_quality liệt kê chúng.",
        "critical": "nghiêm trọng",
        "warning": "cảnh báo",
        "loss_month_note": "Tỷ lệ tổn thất tháng so điện nhận trong tháng dương lịch với điện thương phẩm "
        "của kỳ hóa đơn, vốn ghi chỉ số vào những ngày khác; vì vậy một tháng riêng lẻ có thể âm hoặc cao. "
        "Tỷ lệ lũy kế san bằng chênh lệch này.",
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
        "service_heading": "Dịch vụ khách hàng, lũy kế",
        "service_note": "Yêu cầu theo trạng thái mới nhất (mart_service_monthly). Đúng hạn: giải quyết "
        "trước hoặc đúng thời hạn cam kết. Tồn và quá hạn: yêu cầu chưa đóng vào cuối tháng.",
        "received_month": "Tiếp nhận trong tháng",
        "received_ytd": "Tiếp nhận lũy kế",
        "resolved_ytd": "Đã giải quyết lũy kế",
        "on_time_ytd": "Đúng hạn lũy kế (%)",
        "backlog": "Tồn cuối tháng",
        "overdue": "trong đó quá hạn",
        "escalated_ytd": "Khiếu nại vượt cấp lũy kế",
        "by_type_heading": "Yêu cầu theo loại, lũy kế",
        "by_channel_heading": "Yêu cầu theo kênh tiếp nhận, lũy kế",
        "request_type": "Loại yêu cầu",
        "channel": "Kênh",
        "received": "Tiếp nhận",
        "share": "Tỷ trọng (%)",
        "resolved": "Đã giải quyết",
        "on_time": "Đúng hạn (%)",
        "inspections_heading": "Kiểm tra sử dụng điện, lũy kế",
        "inspections_note": "Các cuộc kiểm tra tại hiện trường theo trạng thái mới nhất "
        "(mart_inspections_monthly); tiền truy thu chưa gồm thuế GTGT.",
        "inspections_month": "Kiểm tra trong tháng",
        "inspections_ytd": "Số cuộc kiểm tra lũy kế",
        "violations_ytd": "Vi phạm lũy kế",
        "hit_rate_ytd": "Tỷ lệ phát hiện lũy kế (%)",
        "recovered_ytd": "Truy thu lũy kế (đ)",
        "per_violation": "Bình quân mỗi vụ (đ)",
        "no_operations": "Các bảng mart chưa có yêu cầu khách hàng hay kiểm tra nào cho kỳ này.",
        "chart_requests": "Yêu cầu của khách hàng theo tháng",
        "chart_inspections": "Kiểm tra sử dụng điện theo tháng và tỷ lệ phát hiện vi phạm",
        "requests_received_series": "tiếp nhận",
        "requests_resolved_series": "đã giải quyết",
        "inspections_series": "số cuộc kiểm tra",
        "hit_rate_series": "tỷ lệ phát hiện (%)",
        "requests": "yêu cầu",
        "inspections": "cuộc kiểm tra",
    },
}

# Names of the operations enums in each language (English: the contract's words made readable).
REQUEST_TYPE_NAMES = {
    "vi": {
        "NEW_CONNECTION": "Cấp điện mới",
        "BILLING": "Hóa đơn, tiền điện",
        "OUTAGE": "Mất điện, sự cố",
        "METER": "Công tơ",
        "CONTRACT_CHANGE": "Thay đổi hợp đồng",
        "COMPLAINT": "Khiếu nại",
        "OTHER": "Khác",
    },
}
CHANNEL_NAMES = {
    "vi": {
        "HOTLINE": "Tổng đài", "WEB": "Website", "APP": "Ứng dụng", "ZALO": "Zalo", "EMAIL": "Email",
        "COUNTER": "Quầy giao dịch", "OTHER": "Khác",
    },
}  # fmt: skip


# The datasets of the data-quality section (a check suite's second part), as each locale says them.
DATASET_NAMES = {
    "en": {
        "customers": "Customers", "meters": "Meters", "network": "Network", "tariffs": "Tariffs",
        "plans": "Plans", "regions": "Region names", "interval_reads": "Interval meter readings",
        "register_reads": "Register meter readings", "bill_lines": "Bill lines", "payments": "Payments",
        "service_requests": "Service requests", "inspections": "Inspections",
        "files": "Files received", "validated": "Validated readings", "marts": "Published figures",
        "mart_kpi_monthly": "Published KPIs", "mart_sales_monthly": "Published sales",
        "mart_energy_balance_monthly": "Published energy balance",
        "mart_service_monthly": "Published service figures",
        "mart_service_mix_monthly": "Published request mix",
        "mart_inspections_monthly": "Published inspection figures",
    },
    "vi": {
        "customers": "Khách hàng", "meters": "Công tơ", "network": "Lưới điện", "tariffs": "Biểu giá",
        "plans": "Kế hoạch", "regions": "Tên điện lực", "interval_reads": "Chỉ số công tơ theo chu kỳ",
        "register_reads": "Chỉ số công tơ cơ", "bill_lines": "Dòng hóa đơn", "payments": "Thanh toán",
        "service_requests": "Yêu cầu của khách hàng", "inspections": "Kiểm tra sử dụng điện",
        "files": "Tệp đã nhận", "validated": "Chỉ số đã kiểm định", "marts": "Số liệu đã công bố",
        "mart_kpi_monthly": "Chỉ tiêu đã công bố", "mart_sales_monthly": "Điện thương phẩm đã công bố",
        "mart_energy_balance_monthly": "Cân bằng điện năng đã công bố",
        "mart_service_monthly": "Dịch vụ khách hàng đã công bố",
        "mart_service_mix_monthly": "Cơ cấu yêu cầu đã công bố",
        "mart_inspections_monthly": "Kiểm tra sử dụng điện đã công bố",
    },
}  # fmt: skip


def dataset_name(dataset: str, locale: str) -> str:
    """A dataset as the locale says it; an unknown one as it is."""
    return DATASET_NAMES.get(locale, {}).get(dataset, dataset)


def enum_name(names: dict[str, dict[str, str]], value: str, locale: str) -> str:
    """A contract enum value as the locale says it ('NEW_CONNECTION' -> 'New connection')."""
    return names.get(locale, {}).get(value) or value.replace("_", " ").capitalize()


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


def check_locale(locale: str) -> str:
    """Return `locale` when the report speaks it. Raises MeterflowError otherwise."""
    if locale not in LOCALES:
        raise MeterflowError(f"locale must be one of {', '.join(LOCALES)}, not {locale!r}")
    return locale


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


def comparison(value: float | None, unit: str, locale: str) -> str:
    """A comparison as words: '78.1% of plan', '+2.9%', '+8.95 VND/kWh', '-1.04 pts'."""
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
