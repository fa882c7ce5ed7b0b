"""The report's loss hunting page: the DTs with the most unexplained energy in the month, and what a month of
inspections from the candidate list would find against the same number of random visits.

Read from the published marts only (mart_loss_hotspots_monthly, mart_inspection_candidates and
mart_inspections_monthly). The list's expected violations add up, over its first N customers (N = the
month's inspections), the past hit rate of each customer's best signal, or the company's hit rate of the
month where no past visit had the signal, and the company's hit rate for the visits a shorter list leaves;
random visits find the company's hit rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etl.report.labels import format_number

TOP_HOTSPOTS = 10
LOSS_HUNTING_MARTS = ("mart_loss_hotspots_monthly", "mart_inspection_candidates", "mart_inspections_monthly")
HIT_RATES = (
    "drop_vs_history_hit_rate_pct",
    "drop_with_dt_loss_hit_rate_pct",
    "near_zero_hit_rate_pct",
    "after_disconnection_hit_rate_pct",
    "tou_mismatch_hit_rate_pct",
    "billed_below_metered_hit_rate_pct",
)

LOSS_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "heading": "Loss hunting: where energy goes missing and whom to visit",
        "hotspots_note": "DTs with the most energy their calendar-month balance does not explain beyond the "
        "median DT of their feeder; weak balances (estimated energy, missing intervals, unread customers) "
        "are left out.",
        "dt": "DT",
        "feeder": "Feeder",
        "region": "Region",
        "kwh_in": "Energy in (kWh)",
        "loss_rate": "Calendar-month loss (%)",
        "vs_feeder": "vs feeder (pts)",
        "vs_own": "vs own months (pts)",
        "unexplained": "Unexplained (kWh)",
        "visits_note": "A month of inspections ({n} visits) taken from the top of the candidate list against "
        "the same number of random visits. Expected violations use each signal's hit rate on past "
        "inspections.",
        "visits": "Visits",
        "candidates": "Customers on the list",
        "expected_list": "Expected violations, from the list",
        "expected_random": "Expected violations, random visits",
        "ratio": "List / random",
        "no_rows": "No calendar-month balance for this month yet.",
    },
    "vi": {
        "heading": "Truy tìm tổn thất: điện năng thất thoát ở đâu và cần kiểm tra ai",
        "hotspots_note": "Các TBA có nhiều điện năng nhất mà cân bằng theo tháng dương lịch không giải thích "
        "được so với TBA trung vị của xuất tuyến; bỏ qua các cân bằng yếu.",
        "dt": "TBA",
        "feeder": "Xuất tuyến",
        "region": "Điện lực",
        "kwh_in": "Điện nhận (kWh)",
        "loss_rate": "Tổn thất tháng dương lịch (%)",
        "vs_feeder": "so với xuất tuyến (điểm)",
        "vs_own": "so với các tháng trước (điểm)",
        "unexplained": "Không giải thích được (kWh)",
        "visits_note": "Một tháng kiểm tra ({n} lượt) lấy từ đầu danh sách đề xuất so với cùng số lượt ngẫu "
        "nhiên. Số vi phạm dự kiến theo tỷ lệ phát hiện của từng dấu hiệu trong các lần kiểm tra trước.",
        "visits": "Lượt kiểm tra",
        "candidates": "Khách hàng trong danh sách",
        "expected_list": "Vi phạm dự kiến, theo danh sách",
        "expected_random": "Vi phạm dự kiến, ngẫu nhiên",
        "ratio": "Danh sách / ngẫu nhiên",
        "no_rows": "Chưa có cân bằng theo tháng dương lịch cho tháng này.",
    },
}


@dataclass(frozen=True)
class LossHunting:
    """The loss hunting page's figures for one period."""

    hotspots: list[dict[str, Any]]
    visits: int  # the month's inspections: the list's length
    listed: int  # customers on the list (at most `visits` counted)
    expected_from_list: float | None
    expected_random: float | None


def load_loss_hunting(con: Any, period: str) -> LossHunting | None:
    """The page's figures; None when the marts (an older file) lack the loss hunting marts."""
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    if not set(LOSS_HUNTING_MARTS) <= tables:
        return None
    cur = con.execute(
        f"""
        select node_id, feeder_id, region_code, kwh_in, loss_rate_calendar_pct, change_vs_feeder_pts,
               change_vs_own_pts, unexplained_kwh
        from mart_loss_hotspots_monthly
        where period = ? and not is_weak_balance and unexplained_kwh > 0
        order by unexplained_kwh desc, node_id
        limit {TOP_HOTSPOTS}
        """,
        [period],
    )
    names = [d[0] for d in cur.description]
    hotspots = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    company = con.execute(
        "select inspections, hit_rate_pct from mart_inspections_monthly "
        "where period = ? and region_code = 'ALL'",
        [period],
    ).fetchone()
    visits, hit_rate = (
        (int(company[0]), float(company[1])) if company and company[1] is not None else (0, None)
    )
    best = f"greatest({', '.join(HIT_RATES)})"
    listed = con.execute(
        f"""
        select count(*), sum(coalesce({best}, ?)) / 100
        from mart_inspection_candidates
        where period = ? and candidate_rank <= ?
        """,
        [hit_rate, period, visits],
    ).fetchone()
    count, expected = (int(listed[0]), listed[1]) if listed else (0, None)
    random = visits * hit_rate / 100 if hit_rate is not None else None
    if (
        expected is not None and hit_rate is not None
    ):  # a list shorter than a month: the rest visited at random
        expected = float(expected) + (visits - count) * hit_rate / 100
    return LossHunting(hotspots, visits, count, float(expected) if expected is not None else None, random)


def loss_hunting_tables(lh: LossHunting | None, locale: str) -> dict[str, Any] | None:
    """The page's tables and labels for the template; None without the loss hunting marts."""
    if lh is None:
        return None
    from etl.report.html import Table  # the report's table type; html imports this module's loader

    t = LOSS_LABELS[locale]
    hotspots = None
    if lh.hotspots:
        hotspots = Table(
            headers=(
                t["dt"], t["feeder"], t["region"], t["kwh_in"], t["loss_rate"], t["vs_feeder"], t["vs_own"],
                t["unexplained"],
            ),
            rows=[
                (
                    str(r["node_id"]),
                    str(r["feeder_id"] or ""),
                    str(r["region_code"]),
                    format_number(r["kwh_in"], 0, locale),
                    format_number(r["loss_rate_calendar_pct"], 2, locale),
                    format_number(r["change_vs_feeder_pts"], 2, locale, signed=True),
                    format_number(r["change_vs_own_pts"], 2, locale, signed=True),
                    format_number(r["unexplained_kwh"], 0, locale),
                )
                for r in lh.hotspots
            ],
            classes=("", "", "", "num", "num", "num", "num", "num"),
        )  # fmt: skip
    ratio = (
        lh.expected_from_list / lh.expected_random
        if lh.expected_from_list is not None and lh.expected_random
        else None
    )
    visits = Table(
        headers=(t["visits"], t["candidates"], t["expected_list"], t["expected_random"], t["ratio"]),
        rows=[
            (
                format_number(lh.visits, 0, locale),
                format_number(lh.listed, 0, locale),
                format_number(lh.expected_from_list, 0, locale),
                format_number(lh.expected_random, 0, locale),
                format_number(ratio, 1, locale),
            )
        ],
        classes=("num", "num", "num", "num", "num"),
    )
    return {
        "t": t,
        "hotspots": hotspots,
        "visits": visits,
        "visits_note": t["visits_note"].format(n=format_number(lh.visits, 0, locale)),
    }
