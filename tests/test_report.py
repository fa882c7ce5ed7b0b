"""The management report: figures, Vietnamese number format, charts, and a file that needs no network."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from etl.errors import MeterflowError
from etl.report import format_number, load_report, render_html, write_report
from etl.settings import Settings


@pytest.fixture(scope="module")
def settings(fixture_marts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data home of its own holding a copy of the hand-made marts (reports are written into it)."""
    home = tmp_path_factory.mktemp("report-home")
    (home / "warehouse").mkdir()
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", home / "warehouse" / "marts.duckdb")
    return Settings(home=home, threads=1, memory_limit="512MB")


@pytest.fixture(scope="module")
def reports(settings: Settings) -> dict[str, str]:
    """The 2025-09 report in both locales, written to their default paths."""
    return {
        locale: write_report(settings, "2025-09", locale=locale).read_text(encoding="utf-8")
        for locale in ("en", "vi")
    }


@pytest.mark.parametrize(
    ("value", "digits", "locale", "signed", "expected"),
    [
        (Decimal("1630000000.000000"), 0, "en", False, "1,630,000,000"),
        (Decimal("1630000000.000000"), 0, "vi", False, "1.630.000.000"),
        (2285.951, 2, "en", False, "2,285.95"),
        (2285.951, 2, "vi", False, "2.285,95"),
        (8.95, 2, "vi", True, "+8,95"),
        (-1.04, 2, "en", True, "-1.04"),
        (-0.001, 2, "en", True, "+0.00"),
        (None, 2, "en", False, "—"),
        (float("nan"), 1, "vi", False, "—"),
    ],
)
def test_format_number(value: object, digits: int, locale: str, signed: bool, expected: str) -> None:
    assert format_number(value, digits, locale, signed) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("largest", "expected"),
    [(181_000_000, (1e6, "million_kwh")), (120_000, (1e3, "thousand_kwh")), (950, (1.0, ""))],
)
def test_kwh_axis_unit_follows_the_size_of_the_company(largest: int, expected: tuple[float, str]) -> None:
    from etl.report.charts import _kwh_scale

    rows = [{"kwh_sold": Decimal(largest)}, {"kwh_sold": None}, {"kwh_sold": Decimal(-5)}]
    assert _kwh_scale(rows) == expected


def test_report_is_written_to_the_default_path(settings: Settings, reports: dict[str, str]) -> None:
    for locale in ("en", "vi"):
        path = settings.home / "docs" / "reports" / f"report_2025-09_{locale}.html"
        assert path.read_text(encoding="utf-8") == reports[locale]
    assert not list((settings.home / "docs" / "reports").glob(".*tmp"))


def test_english_kpi_table_shows_the_company_figures(reports: dict[str, str]) -> None:
    kpis = _section(reports["en"], "kpis")
    rows = _rows(kpis)
    assert rows[0] == ["Figure", "Value", "Against plan", "Year on year"]
    assert rows[1] == [
        "Commercial electricity sold, year to date",
        "1,630,000,000 kWh",
        "78.1% of plan",
        "+2.9%",
    ]
    assert rows[2] == [
        "Average selling price, year to date",
        "2,285.95 VND/kWh",
        "+8.95 VND/kWh",
        "+161.00 VND/kWh",
    ]
    assert rows[3] == ["Loss rate, year to date", "3.51%", "-1.04 pts", "-0.16 pts"]
    # month: received = sold x 1.048 (2024-09: x 1.051); plan = 3.51 + 1.04 = 4.55
    assert rows[4] == ["Loss rate, month", "4.58%", "+0.03 pts", "-0.27 pts"]
    assert rows[5] == ["Customers paying without cash", "100.0%", "—", "—"]
    assert rows[6] == ["Money paid without cash", "100.0%", "—", "—"]


def test_vietnamese_report_formats_numbers_and_labels_the_vietnamese_way(reports: dict[str, str]) -> None:
    page = reports["vi"]
    assert '<html lang="vi">' in page
    rows = _rows(_section(page, "kpis"))
    assert rows[1] == [
        "Sản lượng điện thương phẩm lũy kế",
        "1.630.000.000 kWh",
        "đạt 78,1% kế hoạch",
        "+2,9%",
    ]
    assert rows[2] == ["Giá bán bình quân lũy kế", "2.285,95 đ/kWh", "+8,95 đ/kWh", "+161,00 đ/kWh"]
    assert rows[3] == ["Tỷ lệ tổn thất điện năng lũy kế", "3,51%", "-1,04 điểm %", "-0,16 điểm %"]
    assert rows[5][0] == "Thanh toán không dùng tiền mặt (theo khách hàng)"
    regions = _rows(_section(page, "regions"))
    assert regions[1][:3] == ["DH", "873.000.000", "69,8"]
    assert regions[-1][:2] == ["Toàn công ty", "1.630.000.000"]


def test_regions_table_has_each_region_then_the_company(reports: dict[str, str]) -> None:
    rows = _rows(_section(reports["en"], "regions"))
    assert [r[0] for r in rows] == ["Region", "DH", "VL", "Company"]
    # DH: 9 x (90 M + 2 M) + (1 + ... + 9) M; VL has no plan for 2025
    assert rows[1][:3] == ["DH", "873,000,000", "69.8"]
    assert rows[2][:3] == ["VL", "603,000,000", "—"]
    assert rows[3][:6] == ["Company", "1,630,000,000", "78.1", "+2.9", "2,285.95", "3.51"]


def test_feeders_and_transformers_are_ranked_apart_by_losses_from_january(settings: Settings) -> None:
    data = load_report(settings, "2025-09")
    # a month's loss: F1 10,000 kWh, F2 3,000; DTi 10 x i^2 (DT24 5,760 ... DT15 2,250), nine months
    assert [n["node_id"] for n in data.feeders] == ["F1", "F2"]
    assert [n["node_id"] for n in data.dts] == [f"DT{i}" for i in range(24, 14, -1)]
    top = data.feeders[0]
    assert (top["kwh_in"], top["kwh_billed"], top["loss_kwh"]) == (
        Decimal(1_800_000),
        Decimal(1_710_000),
        Decimal(90_000),
    )
    assert top["loss_rate_pct"] == pytest.approx(5.0)
    assert top["loss_rate_last_year_pct"] is None  # the fixture's balance starts in 2025
    assert data.dts[0]["loss_kwh"] == Decimal(51_840) and data.dts[0]["loss_rate_pct"] == pytest.approx(24.0)


def test_nodes_tables_in_the_page(reports: dict[str, str]) -> None:
    section = _section(reports["en"], "nodes")
    assert "<h3>Feeders</h3>" in section and "<h3>Distribution transformers</h3>" in section
    rows = _rows(section)
    header = ["#", "Node", "Region", "kWh in", "kWh billed", "Loss kWh", "Loss rate (%)",
              "Same months last year (%)", "Change (pts)"]  # fmt: skip
    assert rows[0] == header and rows[3] == header
    assert rows[1] == ["1", "F1", "DH", "1,800,000", "1,710,000", "90,000", "5.00", "—", "—"]
    assert rows[2] == ["2", "F2", "VL", "1,350,000", "1,323,000", "27,000", "2.00", "—", "—"]
    assert rows[4] == ["1", "DT24", "VL", "216,000", "164,160", "51,840", "24.00", "—", "—"]
    assert len(rows) == 3 + 1 + 10
    assert "estimated" not in section.lower()


@pytest.fixture
def named_settings(fixture_marts_home: Path, tmp_path: Path) -> Settings:
    """The hand-made marts as a publish with a regions snapshot naming DH only leaves them, with the
    feeder F1's balance of January to September 2024 and a file check of an earlier period added."""
    from etl.duck import connect

    (tmp_path / "warehouse").mkdir()
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", tmp_path / "warehouse" / "marts.duckdb")
    settings = Settings(home=tmp_path, threads=1, memory_limit="512MB")
    con = connect(settings, settings.marts_path)
    try:
        for table in ("mart_kpi_monthly", "mart_energy_balance_monthly"):
            con.execute(f"alter table {table} add column region_name varchar")
            con.execute(
                f"update {table} set region_name = "
                "case region_code when 'DH' then 'Điện lực Đông Hà' else region_code end"
            )
        con.execute(
            """
            insert into mart_energy_balance_monthly by name
            select strftime(d, '%Y-%m') as period, 'F1' as node_id, 'FEEDER' as node_type,
                   'DH' as region_code, 'Điện lực Đông Hà' as region_name, 200000 as kwh_in,
                   192000 as kwh_billed, 8000 as loss_kwh, 4.0 as loss_rate_pct, 1.0 as estimated_share_pct
            from range(date '2024-01-01', date '2024-10-01', interval 1 month) as t (d)
            """
        )
        con.execute(
            """
            insert into mart_data_quality values
            ('cli__2024-04-01T01:00:00.000000Z', 'ingest', 'ingest.interval_reads',
             'file_accepted(readings/interval_reads_20240301.csv)',
             'INGESTED: 99 of 100 rows accepted, 1 quarantined', 'warning', 100, 1, false,
             timestamp '2024-04-01 01:00:05')
            """
        )
    finally:
        con.close()
    return settings


def test_regions_and_nodes_show_the_region_names(named_settings: Settings) -> None:
    page = write_report(named_settings, "2025-09", locale="vi").read_text(encoding="utf-8")
    assert [r[0] for r in _rows(_section(page, "regions"))] == [
        "Điện lực",
        "Điện lực Đông Hà",
        "VL",  # no snapshot names it: the code
        "Toàn công ty",
    ]
    feeders = _rows(_section(page, "nodes"))
    # F1: 5.00 % from January to September 2025, 8,000 / 200,000 = 4.00 % over the same months of 2024
    assert feeders[1] == [
        "1", "F1", "Điện lực Đông Hà", "1.800.000", "1.710.000", "90.000", "5,00", "4,00", "+1,00"
    ]  # fmt: skip
    assert feeders[2][2:3] == ["VL"] and feeders[2][-2:] == ["—", "—"]


def test_quality_is_counted_by_dataset_with_the_checks_that_failed_in_an_appendix(
    settings: Settings, reports: dict[str, str]
) -> None:
    data = load_report(settings, "2025-09")
    assert data.latest_check == "2025-10-02 01:02"
    assert [
        (d["dataset"], d["checks"], d["passed"], d["warnings_failed"], d["critical_failed"])
        for d in data.quality_by_dataset
    ] == [("bill_lines", 2, 1, 1, 0), ("marts", 2, 1, 1, 0)]  # the kpi check counts once, its latest
    bill_lines = data.quality_by_dataset[0]
    assert (
        bill_lines["rows_in_lake"],
        bill_lines["rows_quarantined"],
        bill_lines["files_with_quarantine"],
    ) == (
        997,
        3,
        1,
    )
    en = _section(reports["en"], "quality")
    assert "run" not in en.lower() and "cli__" not in en
    assert "latest check 2025-10-02 01:02 UTC" in en
    assert _rows(en)[1] == ["Bill lines", "2", "1", "1", "0", "997", "3", "1"]
    assert _rows(en)[2] == ["Published figures", "2", "1", "1", "0", "—", "—", "0"]
    assert _rows(_section(reports["en"], "appendix")) == [
        ["Data", "Check", "Description", "Severity", "Rows failed", "Rows checked"],
        ["Bill lines", "billing/bill_lines_202509.csv", "INGESTED: 997 of 1000 rows accepted, 3 quarantined",
         "warning", "3", "1,000"],
        ["Published figures", "feeder_covers_its_dts", "a feeder receives at least the energy of its DTs",
         "warning", "2", "18"],
    ]  # fmt: skip
    vi = _section(reports["vi"], "quality")
    assert _rows(vi)[0][:3] == ["Dữ liệu", "Số kiểm tra", "Đạt"]
    assert _rows(vi)[1][0] == "Dòng hóa đơn" and _rows(vi)[2][0] == "Số liệu đã công bố"
    assert _rows(_section(reports["vi"], "appendix"))[1][3] == "cảnh báo"


def test_files_of_other_periods_are_counted_not_listed(named_settings: Settings) -> None:
    data = load_report(named_settings, "2025-09")
    assert data.quality_other_files == 1
    assert all("20240301" not in str(f["check_name"]) for f in data.quality_failures)
    page = write_report(named_settings, "2025-09", locale="en").read_text(encoding="utf-8")
    assert "interval_reads_20240301" not in page
    assert "1 more files of other periods had rows set aside" in _section(page, "appendix")
    # the earlier file's check is still counted among the readings' checks
    readings = next(d for d in data.quality_by_dataset if d["dataset"] == "interval_reads")
    assert (readings["checks"], readings["warnings_failed"], readings["files_with_quarantine"]) == (1, 1, 0)


def test_the_months_loss_rate_carries_its_note(reports: dict[str, str]) -> None:
    assert "billing period" in _section(reports["en"], "kpis")
    assert "kỳ hóa đơn" in _section(reports["vi"], "kpis")


PLAN_COLUMNS = (
    "plan_attainment_pct",
    "kwh_sold_ytd_yoy_pct",
    "avg_price_ytd_vs_plan_vnd",
    "avg_price_ytd_yoy_vnd",
    "loss_rate_ytd_vs_plan_pts",
    "loss_rate_ytd_yoy_pts",
)


@pytest.fixture
def altered_settings(fixture_marts_home: Path, tmp_path: Path) -> Settings:
    """A copy of the hand-made marts whose comparisons for 2025-09 no longer follow from the other columns,
    and whose plan targets differ from what the comparisons imply: a report that recomputes shows others."""
    from etl.duck import connect

    (tmp_path / "warehouse").mkdir()
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", tmp_path / "warehouse" / "marts.duckdb")
    settings = Settings(home=tmp_path, threads=1, memory_limit="512MB")
    con = connect(settings, settings.marts_path)
    try:
        con.execute(
            """
            update mart_kpi_monthly set
                plan_attainment_pct = 12.345, kwh_sold_ytd_yoy_pct = -6.78,
                avg_price_ytd_vs_plan_vnd = 7.77, avg_price_ytd_yoy_vnd = -3.21,
                loss_rate_ytd_vs_plan_pts = 0.42, loss_rate_ytd_yoy_pts = 0.57,
                plan_loss_rate_pct = 4.0, plan_avg_price_vnd_per_kwh = 2300
            where period = '2025-09' and region_code in ('ALL', 'DH')
            """
        )
    finally:
        con.close()
    return settings


def test_plan_comparisons_are_the_marts_columns(altered_settings: Settings, tmp_path: Path) -> None:
    data = load_report(altered_settings, "2025-09")
    ytd_sold, ytd_price, ytd_loss, month_loss = data.kpis[:4]
    assert (ytd_sold.vs_plan, ytd_sold.yoy) == (12.345, -6.78)
    assert (ytd_price.vs_plan, ytd_price.yoy) == (7.77, -3.21)
    assert (ytd_loss.vs_plan, ytd_loss.yoy) == (0.42, 0.57)
    # the month's rate against the published target: 4.58 - 4.0 (not 4.58 - (3.51 - 0.42))
    assert month_loss.value == pytest.approx(4.58, abs=0.005)
    assert month_loss.vs_plan == pytest.approx(month_loss.value - 4.0)
    dh = next(r for r in data.regions if r["region_code"] == "DH")
    assert tuple(
        dh[c] for c in ("plan_attainment_pct", "kwh_sold_ytd_yoy_pct", "loss_rate_ytd_vs_plan_pts")
    ) == (
        12.345,
        -6.78,
        0.42,
    )
    page = write_report(altered_settings, "2025-09", out=tmp_path / "r.html").read_text(encoding="utf-8")
    rows = _rows(_section(page, "kpis"))
    assert rows[1][2:] == ["12.3% of plan", "-6.8%"]
    assert rows[2][2:] == ["+7.77 VND/kWh", "-3.21 VND/kWh"]
    assert rows[3][2:] == ["+0.42 pts", "+0.57 pts"]
    assert rows[4][2] == "+0.58 pts"
    regions = _rows(_section(page, "regions"))
    assert regions[1][:4] == ["DH", "873,000,000", "12.3", "-6.8"]
    assert regions[1][6] == "+0.42"


def test_report_text_is_escaped(fixture_marts_home: Path, tmp_path: Path) -> None:
    """A text from the marts that looks like markup shows as text: the template escapes every value."""
    from etl.duck import connect

    (tmp_path / "warehouse").mkdir()
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", tmp_path / "warehouse" / "marts.duckdb")
    settings = Settings(home=tmp_path, threads=1, memory_limit="512MB")
    con = connect(settings, settings.marts_path)
    try:
        con.execute(
            "update mart_data_quality set description = '<script>alert(1)</script> & \"more\"' "
            "where check_name = 'feeder_covers_its_dts'"
        )
    finally:
        con.close()
    page = render_html(load_report(settings, "2025-09"), "en")
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;more&#34;" in _section(page, "appendix")


def test_every_chart_is_inline_svg_with_unique_ids(reports: dict[str, str]) -> None:
    for page in reports.values():
        charts = re.findall(r'<svg class="chart" id="(chart-[a-z]+)"', page)
        assert charts == [
            "chart-kwh",
            "chart-price",
            "chart-loss",
            "chart-cashless",
            "chart-requests",
            "chart-inspections",
        ]
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), "ids must be unique across the inline charts"
        for ref in set(re.findall(r'href="#([^"]+)"', page)):
            assert ref in ids, ref


def test_report_fetches_nothing(reports: dict[str, str]) -> None:
    for page in reports.values():
        assert "<script" not in page and "<link" not in page and "@import" not in page
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
        assert "default-src 'none'" in page


def test_same_marts_give_the_same_file(settings: Settings, reports: dict[str, str]) -> None:
    assert render_html(load_report(settings, "2025-09"), "en") == reports["en"]


def test_report_refuses_bad_input(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(MeterflowError, match="YYYY-MM"):
        write_report(settings, "2025-9")
    with pytest.raises(MeterflowError, match="locale"):
        write_report(settings, "2025-09", locale="fr")
    with pytest.raises(MeterflowError, match="no company figures for period 2023-01"):
        write_report(settings, "2023-01", out=tmp_path / "r.html")
    with pytest.raises(MeterflowError, match="no published marts"):
        write_report(Settings(home=tmp_path / "empty"), "2025-09")
    assert not (tmp_path / "r.html").exists()


def test_cli_report_writes_the_file(settings: Settings, tmp_path: Path) -> None:
    from etl.cli import main

    out = tmp_path / "r.html"
    assert main(["--home", str(settings.home), "report", "--locale", "vi", "--out", str(out)]) == 0
    assert "1.630.000.000 kWh" in out.read_text(encoding="utf-8")  # the latest period is 2025-09


def test_report_of_a_generated_company(generated_company: Settings, tmp_path: Path) -> None:
    """Through etl.pipeline.run: the KPI table shows company_kpis rounded, every region, every chart."""
    from etl.duck import connect
    from etl.summary import company_kpis

    period, lines = company_kpis(generated_company)
    page = write_report(generated_company, locale="vi", out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"— {period}</h1>" in page
    rows = _rows(_section(page, "kpis"))
    assert rows[1][1] == f"{format_number(lines[0].value, 0, 'vi')} kWh"
    assert rows[1][2] == f"đạt {format_number(lines[0].vs_plan, 1, 'vi')}% kế hoạch"
    assert rows[2][1] == f"{format_number(lines[1].value, 2, 'vi')} đ/kWh"
    assert rows[3][1] == f"{format_number(lines[2].value, 2, 'vi')}%"
    assert rows[3][2] == f"{format_number(lines[2].vs_plan, 2, 'vi', signed=True)} điểm %"
    con = connect(generated_company, generated_company.marts_path, read_only=True)
    try:
        regions = con.execute(
            "select region_name from mart_kpi_monthly where period = ? and region_code <> 'ALL' "
            "order by region_code",
            [period],
        ).fetchall()
        nodes = con.execute(
            "select count(distinct node_id) filter (where node_type = 'FEEDER'), "
            "count(distinct node_id) filter (where node_type = 'DT') from mart_energy_balance_monthly"
        ).fetchone()
    finally:
        con.close()
    assert [r[0] for r in _rows(_section(page, "regions"))[1:]] == [*(r[0] for r in regions), "Toàn công ty"]
    feeders, dts = nodes
    assert len(_rows(_section(page, "nodes"))) == 2 + min(10, feeders) + min(10, dts)
    assert len(re.findall(r'<svg class="chart"', page)) == 6  # four of energy, two of operations
    quality = [r[0] for r in _rows(_section(page, "quality"))]
    assert {"Chỉ số công tơ theo chu kỳ", "Dòng hóa đơn", "Tên điện lực", "Số liệu đã công bố"} <= set(
        quality
    )


def test_generated_companys_comparisons_are_the_marts_columns(generated_company: Settings) -> None:
    """Through etl.pipeline.run: each comparison of the latest period equals its mart column, exactly."""
    from etl.duck import connect
    from etl.summary import latest_period

    data = load_report(generated_company, latest_period(generated_company))
    con = connect(generated_company, generated_company.marts_path, read_only=True)
    try:
        cur = con.execute(
            f"select region_code, {', '.join(PLAN_COLUMNS)}, loss_rate_pct, plan_loss_rate_pct "
            "from mart_kpi_monthly where period = ?",
            [data.period],
        )
        names = [d[0] for d in cur.description]
        mart = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        con.close()
    company = {k: None if v is None else float(v) for k, v in mart["ALL"].items() if k != "region_code"}
    assert None not in company.values(), company  # the generated company has a plan and a year before
    ytd_sold, ytd_price, ytd_loss, month_loss = data.kpis[:4]
    assert (ytd_sold.vs_plan, ytd_sold.yoy) == (
        company["plan_attainment_pct"],
        company["kwh_sold_ytd_yoy_pct"],
    )
    assert (ytd_price.vs_plan, ytd_price.yoy) == (
        company["avg_price_ytd_vs_plan_vnd"],
        company["avg_price_ytd_yoy_vnd"],
    )
    assert (ytd_loss.vs_plan, ytd_loss.yoy) == (
        company["loss_rate_ytd_vs_plan_pts"],
        company["loss_rate_ytd_yoy_pts"],
    )
    assert month_loss.vs_plan == company["loss_rate_pct"] - company["plan_loss_rate_pct"]
    regional = ("plan_attainment_pct", "kwh_sold_ytd_yoy_pct", "loss_rate_ytd_vs_plan_pts")
    assert {r["region_code"]: [r[c] for c in regional] for r in data.regions} == {
        code: [row[c] for c in regional] for code, row in mart.items()
    }


def _section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert match, section_id
    return match.group(1)


def _rows(fragment: str) -> list[list[str]]:
    """The text of each table row's cells, tags stripped and entities decoded."""
    import html

    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", fragment, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def test_operations_half_of_a_generated_company_is_the_marts_figures(
    generated_company: Settings, tmp_path: Path
) -> None:
    """Requests and inspections of the latest period, company row, in both languages, as the marts say."""
    from etl.duck import connect
    from etl.report.labels import REQUEST_TYPE_NAMES, enum_name
    from etl.summary import latest_period

    period = latest_period(generated_company)
    january = period[:4] + "-01"
    con = connect(generated_company, generated_company.marts_path, read_only=True)
    try:
        service = con.execute(
            """
            select m.requests_received, m.requests_received_ytd, y.resolved, m.on_time_ytd_pct, m.backlog_end,
                   m.overdue_end, y.escalated
            from mart_service_monthly as m,
                 (select sum(requests_resolved) as resolved, sum(escalated) as escalated
                  from mart_service_monthly where region_code = 'ALL' and period between ? and ?) as y
            where m.period = ? and m.region_code = 'ALL'
            """,
            [january, period, period],
        ).fetchone()
        inspections = con.execute(
            "select inspections, inspections_ytd, violations_ytd, recovered_vnd_ytd "
            "from mart_inspections_monthly where period = ? and region_code = 'ALL'",
            [period],
        ).fetchone()
        top_type = con.execute(
            "select request_type from mart_service_mix_monthly where period between ? and ? "
            "group by request_type order by sum(requests_received) desc, request_type limit 1",
            [january, period],
        ).fetchone()[0]
    finally:
        con.close()
    assert service[0] > 0 and inspections[1] > 0
    for locale, company in (("en", "Company"), ("vi", "Toàn công ty")):
        page = write_report(generated_company, locale=locale, out=tmp_path / f"{locale}.html").read_text(
            "utf-8"
        )
        regions, by_type, _by_channel = (
            _rows(table) for table in re.findall(r"<table.*?</table>", _section(page, "service"), re.S)
        )
        digits = (0, 0, 0, 1, 0, 0, 0)
        expected = [format_number(v, d, locale) for v, d in zip(service, digits, strict=True)]
        assert next(r for r in regions if r[0] == company)[1:] == expected
        assert by_type[1][0] == enum_name(REQUEST_TYPE_NAMES, top_type, locale)  # the most frequent first
        found = next(r for r in _rows(_section(page, "inspections")) if r[0] == company)
        assert [found[1], found[2], found[3], found[5]] == [
            format_number(inspections[0], 0, locale),
            format_number(inspections[1], 0, locale),
            format_number(inspections[2], 0, locale),
            format_number(inspections[3], 0, locale),
        ]
        assert len(re.findall(r'data-chart="(requests|inspections)"', page)) == 2


def test_marts_without_operations_data_say_so(fixture_marts_home: Path, tmp_path: Path) -> None:
    """A marts file published before the operations marts existed: both sections say there is nothing."""
    import duckdb

    home = tmp_path / "home"
    (home / "warehouse").mkdir(parents=True)
    marts = home / "warehouse" / "marts.duckdb"
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", marts)
    con = duckdb.connect(str(marts))
    for table in ("mart_service_monthly", "mart_service_mix_monthly", "mart_inspections_monthly"):
        con.execute(f"drop table {table}")
    con.close()
    settings = Settings(home=home, threads=1, memory_limit="512MB")
    en = write_report(settings, "2025-09", locale="en").read_text(encoding="utf-8")
    vi = write_report(settings, "2025-09", locale="vi").read_text(encoding="utf-8")
    assert "no service requests or inspections for this period" in _section(en, "service")
    assert "chưa có yêu cầu khách hàng hay kiểm tra" in _section(vi, "inspections")
    assert 'data-chart="requests"' not in en
    assert 'data-chart="requests"' in _section(reports_page(fixture_marts_home, tmp_path), "charts")


def reports_page(fixture_marts_home: Path, tmp_path: Path) -> str:
    home = tmp_path / "with-operations"
    (home / "warehouse").mkdir(parents=True)
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", home / "warehouse" / "marts.duckdb")
    settings = Settings(home=home, threads=1, memory_limit="512MB")
    return write_report(settings, "2025-09", locale="en").read_text(encoding="utf-8")
