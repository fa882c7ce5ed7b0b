"""The loss hunting marts (docs/loss_hunting.md) on hand-written aggregates, with exact expected values."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.duck import connect
from etl.lake import QUALITY_COLUMNS
from etl.marts.aggregates import (
    CALENDAR_AGGREGATES,
    MONTHLY_AGGREGATES,
    OPERATIONS_AGGREGATES,
    PLANS_AGGREGATE,
    PLANS_COLUMNS,
    SIGNAL_AGGREGATES,
    build_signals,
    calendar_passes,
    signal_periods,
)
from etl.models import build
from etl.report.loss_hunting import HIT_RATES, load_loss_hunting
from etl.settings import Settings
from tests.test_marts_sql import make_table

D = Decimal
MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=1e-12)


class Aggregates:
    """aggregates_<model> tables as publish registers them, filled by hand."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.rows: dict[str, list[dict]] = {
            m: [] for m in (MONTHLY_AGGREGATES | CALENDAR_AGGREGATES | OPERATIONS_AGGREGATES)
        }

    def dt(self, period: str, node: str, kwh_in: str, estimated: str = "0", feeder: str = "F1") -> None:
        self.rows["int_energy_balance__monthly"].append(
            {"period": period, "node_id": node, "node_type": "DT", "region_code": "R1", "parent_id": feeder}
            | {"kwh_in": kwh_in, "estimated_kwh": estimated, "kwh_billed": "0", "customers_billed": 1}
            | {"meters": 1, "missing_intervals": 0}
        )

    def use(self, period: str, customer: str, kwh: str, dt: str | None = None, **kw: Any) -> None:
        row = {"period": period, "customer_id": customer, "dt_id": dt, "feeder_id": "F1" if dt else None}
        row |= {"region_code": "R1", "customer_class": "RESIDENTIAL", "kwh_calendar": kwh, "profile": "DT"}
        self.rows["int_consumption__calendar_monthly"].append(
            row | {"reading_periods": 1, "is_covered": True, "reading_tolerance_kwh": "3"} | kw
        )

    def billed(self, period: str, customer: str, kwh: str) -> None:
        row = {"period": period, "customer_id": customer, "kwh_billed": kwh, "kwh_adjusted": "0"}
        self.rows["int_customer_billed__monthly"].append(row)

    def inspection(self, customer: str, on: str, result: str) -> None:
        n = len(self.rows["int_inspections__customers"]) + 1
        row = {"inspection_id": f"I{n}", "customer_id": customer, "inspected_on": on, "period": on[:7]}
        self.rows["int_inspections__customers"].append(row | {"result": result})

    def build(self, *marts: str) -> duckdb.DuckDBPyConnection:
        for model, columns in (MONTHLY_AGGREGATES | CALENDAR_AGGREGATES | OPERATIONS_AGGREGATES).items():
            make_table(self.con, f"aggregates_{model}", columns, self.rows[model])
        make_table(self.con, f"aggregates_{PLANS_AGGREGATE}", PLANS_COLUMNS, [])
        make_table(self.con, "quality_results", QUALITY_COLUMNS, [])
        # the signals of every month, as a build from scratch keeps them
        build_signals(self.con, self.periods())
        for model in SIGNAL_AGGREGATES:
            self.con.execute(f"create or replace table aggregates_{model} as select * from {model}")
        build(self.con, list(marts))
        return self.con

    def periods(self) -> list[str]:
        return sorted({row["period"] for row in self.rows["int_consumption__calendar_monthly"]})


@pytest.fixture
def aggregates(tmp_path: Path) -> Iterator[Aggregates]:
    con = connect(Settings(home=tmp_path, threads=1))
    yield Aggregates(con)
    con.close()


def test_hotspots_rank_against_own_months_and_the_feeder_and_flag_weak_balances(
    aggregates: Aggregates,
) -> None:
    # one customer per DT; every DT takes in 100 kWh a month. A loses 2 % a month, then 10 % in April;
    # B 2 %, C 3 %; D's April is 10 % estimated by VEE (weak)
    for period in MONTHS[:4]:
        april = period == "2025-04"
        for node, used in (("A", "90" if april else "98"), ("B", "98"), ("C", "97"), ("D", "95")):
            aggregates.dt(period, node, "100", estimated="10" if april and node == "D" else "0")
            aggregates.use(period, f"C{node}", used, dt=node)
    con = aggregates.build("mart_loss_hotspots_monthly")
    rows = con.execute(
        """
        select node_id, hotspot_rank, score_pts, change_vs_own_pts, change_vs_feeder_pts, unexplained_kwh,
            own_median_rate_pct, feeder_median_rate_pct, is_weak_balance
        from mart_loss_hotspots_monthly where period = '2025-04' order by node_id
        """
    ).fetchall()
    # April: the feeder's sound DTs lose 10, 2 and 3 %: median 3
    assert rows == [
        ("A", 1, approx(8.0), approx(8.0), approx(7.0), approx(7.0), approx(2.0), approx(3.0), False),
        ("B", 2, approx(0.0), approx(0.0), approx(-1.0), approx(-1.0), approx(2.0), approx(3.0), False),
        ("C", 2, approx(0.0), approx(0.0), approx(0.0), approx(0.0), approx(3.0), approx(3.0), False),
        ("D", 4, approx(2.0), approx(0.0), approx(2.0), approx(2.0), approx(5.0), approx(3.0), True),
    ]
    # February has one month of history: no change against the DT's own months yet
    february = con.execute(
        "select change_vs_own_pts from mart_loss_hotspots_monthly where period = '2025-02' and node_id = 'A'"
    ).fetchone()
    assert february == (None,)


def candidates_world(aggregates: Aggregates) -> duckdb.DuckDBPyConnection:
    """Twelve steady customers (100 kWh a month), and from May: T drops to 60, Z to 5, X (disconnected on
    March 15) uses 20 after 50 in March and 0 in April, H (on DT A, whose loss rises) drops to 80; U's
    time-of-use registers miss 5 kWh and B is billed 90 of 100 metered; I dropped like T but was inspected
    in February; V dropped to 50 in April and an inspection found a violation in May."""
    series = {f"P{i:02d}": ["100"] * 6 for i in range(1, 11)}
    series |= {
        "U": ["100"] * 6,
        "B": ["100"] * 6,
        "T": ["100"] * 4 + ["60"] * 2,
        "Z": ["100"] * 4 + ["5"] * 2,
        "X": ["100", "100", "50", "0", "20", "20"],
        "I": ["100"] * 4 + ["60"] * 2,
        "V": ["100"] * 3 + ["50"] * 3,
    }
    for customer, values in series.items():
        disconnected = {"disconnected_on": "2025-03-15"} if customer == "X" else {}
        for period, kwh in zip(MONTHS, values, strict=True):
            late = period >= "2025-05"
            tou = {"tou_gap_kwh": "5", "kwh_metered_read": "100"} if customer == "U" and late else {}
            metered = {"kwh_metered_read": "100"} if customer == "B" else {}
            aggregates.use(period, customer, kwh, **disconnected, **tou, **metered)
    for period in MONTHS:
        aggregates.billed(period, "B", "90" if period >= "2025-05" else "100")
        aggregates.dt(period, "A", "125")
        aggregates.use(period, "H", "80" if period >= "2025-05" else "100", dt="A")
    aggregates.inspection("I", "2025-02-10", "NO_VIOLATION")
    aggregates.inspection("V", "2025-05-03", "VIOLATION")
    aggregates.inspection("P01", "2025-05-10", "NO_VIOLATION")
    return aggregates.build("mart_inspection_candidates")


def test_each_signal_ranks_its_customer_and_recent_visits_are_held_back(aggregates: Aggregates) -> None:
    con = candidates_world(aggregates)
    rows = con.execute(
        """
        select candidate_rank, customer_id, signals, score, dt_score_pts
        from mart_inspection_candidates where period = '2025-05' order by candidate_rank
        """
    ).fetchall()
    # A loses 20 % a month, then (125 - 80) / 125 = 36 % in May: 16 points over its own months (its feeder
    # has no other DT); the DT's score counts at most 10 points, as 10 / 10
    assert rows == [
        (1, "X", "drop_vs_history,after_disconnection", approx(1 + 3 + 0.8), None),
        (2, "H", "drop_with_dt_loss", approx(3 + 0.2 + 1.0), approx(16.0)),
        (3, "Z", "drop_vs_history,near_zero", approx(1 + 2 + 0.95), None),
        (4, "B", "billed_below_metered", approx(2.0), None),
        (5, "U", "tou_mismatch", approx(2.0), None),
    ]
    # T's drop alone does not list it; I (inspected in February) and V (in May) are held back
    t = con.execute(
        "select count(*) from mart_inspection_candidates where customer_id in ('T', 'I', 'V', 'P01')"
    ).fetchone()
    assert t == (0,)


def test_hit_rates_come_from_past_inspections_and_the_signals_before_them(aggregates: Aggregates) -> None:
    con = candidates_world(aggregates)
    rates = con.execute(
        """
        select period, drop_vs_history_hit_rate_pct, near_zero_hit_rate_pct, billed_below_metered_hit_rate_pct
        from mart_inspection_candidates where customer_id = 'Z' order by period
        """
    ).fetchall()
    # before June: V's visit in May found a violation after a drop in April; P01's visit had no signal
    assert rates == [("2025-05", None, None, None), ("2025-06", approx(100.0), None, None)]


def test_the_signals_of_the_newest_months_rebuilt_alone_are_those_of_a_whole_build(
    aggregates: Aggregates,
) -> None:
    # a close rebuilds the signals of its newest months only (signal_periods): each reads the months before
    # it from the aggregates, so the rows are those a build of every month gives
    con = candidates_world(aggregates)
    whole = con.execute(
        "select * from aggregates_int_customer_signals__monthly where period >= '2025-05' order by all"
    ).fetchall()
    assert {r[1] for r in whole} >= {"X", "H", "Z", "B", "U", "T", "I"}
    build_signals(con, ["2025-05", "2025-06"])
    assert con.execute("select * from int_customer_signals__monthly order by all").fetchall() == whole


def test_a_month_rebuilt_rebuilds_every_calendar_quarter_that_reads_it() -> None:
    known = {f"{y}-{m:02d}" for y in (2024, 2025) for m in range(1, 13)} - {"2025-10", "2025-11", "2025-12"}
    # a close of September 2025: the spreads of June to September read its reading periods
    assert calendar_passes(["2025-09"], known) == [
        ["2025-04", "2025-05", "2025-06"],
        ["2025-07", "2025-08", "2025-09"],
    ]
    # a month delivered again in the past: the spreads of the three months either side read it
    assert calendar_passes(["2025-02"], known) == [
        ["2024-10", "2024-11", "2024-12"],
        ["2025-01", "2025-02", "2025-03"],
        ["2025-04", "2025-05", "2025-06"],
    ]
    # the first month of data: its quarter holds only the months with data
    assert calendar_passes(["2024-02"], {"2024-02"}) == [["2024-02"]]
    assert calendar_passes([], known) == []


def test_a_month_rebuilt_rebuilds_the_signals_of_every_month_after_it() -> None:
    known = {"2025-01", "2025-02", "2025-03", "2025-04"}
    assert signal_periods(["2025-03", "2025-02"], known, known) == ["2025-02", "2025-03", "2025-04"]
    assert signal_periods(["2025-05"], known, known) == ["2025-05"]
    assert signal_periods([], known, known) == []
    # months whose signals were never kept (a lake built before the signals were) are built too
    assert signal_periods(["2025-04"], known, {"2025-03", "2025-04"}) == ["2025-01", "2025-02", "2025-04"]
    assert signal_periods([], known, set()) == sorted(known)


def test_candidates_carry_no_personal_data(aggregates: Aggregates) -> None:
    con = candidates_world(aggregates)
    columns = {r[0] for r in con.execute("describe mart_inspection_candidates").fetchall()}
    assert "customer_id" in columns
    assert not columns & {"customer_name", "address", "phone"}


def test_the_report_page_compares_a_month_of_visits_from_the_list_with_random_ones() -> None:
    con = duckdb.connect()
    con.execute(
        "create table mart_inspections_monthly as select '2025-05' as period, 'ALL' as region_code, "
        "3 as inspections, 2.0 as hit_rate_pct"
    )
    rates = ", ".join(
        f"{rate}::double as {rate}"
        if rate in ("drop_with_dt_loss_hit_rate_pct", "near_zero_hit_rate_pct")
        else f"null::double as {rate}"
        for rate in HIT_RATES
    )
    con.execute(
        f"""
        create table mart_inspection_candidates as
        select period, candidate_rank, {rates}
        from (values ('2025-05', 1, 40.0, 10.0), ('2025-05', 2, null, 5.0), ('2025-05', 3, null, null),
            ('2025-05', 4, 90.0, null))
            as t (period, candidate_rank, drop_with_dt_loss_hit_rate_pct, near_zero_hit_rate_pct)
        """
    )
    con.execute(
        "create table mart_loss_hotspots_monthly (period varchar, node_id varchar, feeder_id varchar, "
        "region_code varchar, kwh_in decimal(38,12), loss_rate_calendar_pct double, "
        "change_vs_feeder_pts double, change_vs_own_pts double, unexplained_kwh decimal(38,12), "
        "is_weak_balance boolean)"
    )
    con.execute(
        "insert into mart_loss_hotspots_monthly values "
        "('2025-05', 'A', 'F', 'R', 100, 9, 7, 8, 7, false), "
        "('2025-05', 'B', 'F', 'R', 100, 5, 3, 3, 3, true), "
        "('2025-05', 'C', 'F', 'R', 200, 4, 2, 1, 4, false), "
        "('2025-05', 'D', 'F', 'R', 100, 1, -1, 0, -1, false)"
    )
    lh = load_loss_hunting(con, "2025-05")
    assert lh is not None
    # three visits: the first three on the list, each at its best signal's past rate, the third at the
    # company's 2 %; random visits find 3 x 2 %
    assert (lh.visits, lh.listed) == (3, 3)
    assert lh.expected_from_list == pytest.approx((40 + 5 + 2) / 100)
    assert lh.expected_random == pytest.approx(0.06)
    # five visits and a list of four: the fifth visit is a random one
    con.execute("update mart_inspections_monthly set inspections = 5")
    longer = load_loss_hunting(con, "2025-05")
    assert longer is not None and (longer.visits, longer.listed) == (5, 4)
    assert longer.expected_from_list == pytest.approx((40 + 5 + 2 + 90 + 2) / 100)
    # weak balances and DTs without unexplained energy are left out, the rest by unexplained kWh
    assert [r["node_id"] for r in lh.hotspots] == ["A", "C"]
