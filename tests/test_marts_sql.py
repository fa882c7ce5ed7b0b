"""The marts' SQL models on hand-written rows in an in-memory DuckDB, with exact expected values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.duck import connect
from etl.lake import QUALITY_COLUMNS
from etl.marts import aggregates as marts
from etl.marts.aggregates import (
    CALENDAR_AGGREGATES,
    INTERVAL_READS_COLUMNS,
    METER_MONTHLY_COLUMNS,
    MONTHLY_AGGREGATES,
    OPERATIONS_AGGREGATES,
    PLANS_AGGREGATE,
    REGISTER_CONSUMPTION_COLUMNS,
    SIGNAL_AGGREGATES,
)
from etl.models import build, models_in, raw_columns
from etl.settings import Settings

D = Decimal
METERS_CURRENT_COLUMNS = {
    "meter_id": "VARCHAR",
    "role": "VARCHAR",
    "node_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "multiplier": "DECIMAL(18,6)",
}


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=1e-12)


def make_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str], rows: list[dict]) -> None:
    """A table with `columns`; each row a dict of some of them (the rest NULL)."""
    unknown = {k for row in rows for k in row} - set(columns)
    assert not unknown, f"{name}: no columns {unknown}"
    con.execute(f"create or replace table {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
    if rows:
        marks = ", ".join("?" for _ in columns)
        con.executemany(
            f"insert into {name} values ({marks})", [[row.get(c) for c in columns] for row in rows]
        )


def make_raw(con: duckdb.DuckDBPyConnection, dataset: str, rows: list[dict]) -> None:
    """raw_<dataset> with lineage filled in: ingest_seq 1 and consecutive lines unless given."""
    filled = [
        {"_ingest_seq": 1, "_line_no": i + 2, "_source_file": f"{dataset}.csv"} | row
        for i, row in enumerate(rows)
    ]
    make_table(con, f"raw_{dataset}", raw_columns(dataset), filled)


class World:
    """Sources as the runner registers them; `build` runs the models like etl.marts and etl.publish."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.prepared: list[str] = []
        self.raw: dict[str, list[dict]] = {
            d: [] for d in ("customers", "network", "plans", "bill_lines", "payments")
        }
        self.meters: list[dict] = []
        self.meter_monthly: list[dict] = []
        self.interval_reads: list[dict] = []
        self.register_consumption: list[dict] = []

    def customer(self, cid: str, region: str, snapshot: str = "2024-01-01", **kw: Any) -> None:
        row = {
            "customer_id": cid,
            "region_code": region,
            "customer_class": "RESIDENTIAL",
            "tariff_code": "RES",
        }
        self.raw["customers"].append(
            row | {"dt_id": "DT0", "connected_on": "2020-01-01", "_snapshot_date": snapshot} | kw
        )

    def node(
        self, node_id: str, node_type: str, parent: str | None, region: str, snapshot: str = "2024-01-01"
    ) -> None:
        row = {"node_id": node_id, "node_type": node_type, "parent_id": parent, "region_code": region}
        self.raw["network"].append(row | {"_snapshot_date": snapshot})

    def plan(self, year: int, region: str, kpi: str, target: str, snapshot: str = "2024-01-01") -> None:
        row = {"year": year, "region_code": region, "kpi": kpi, "target": target, "_snapshot_date": snapshot}
        self.raw["plans"].append(row)

    def line(self, period: str, customer: str, kwh: str, amount: str, **kw: Any) -> None:
        n = len(self.raw["bill_lines"]) + 1
        row = {
            "export_id": f"CIS-{period}-R1",
            "export_version": 1,
            "billing_period": period,
            "bill_id": f"B{n}",
            "line_no": 1,
            "customer_id": customer,
            "bill_type": "REGULAR",
            "tariff_code": "RES",
            "component": "BLOCK_1",
            "kwh": kwh,
            "amount_vnd": amount,
            "vat_vnd": str(D(amount) * D("0.08")),
        }
        self.raw["bill_lines"].append(row | kw)

    def payment(self, pid: str, customer: str, paid_at: str, amount: str, channel: str, **kw: Any) -> None:
        row = {"payment_id": pid, "bill_id": "B", "customer_id": customer, "paid_at": paid_at}
        self.raw["payments"].append(row | {"amount_vnd": amount, "channel": channel} | kw)

    def meter(self, meter_id: str, role: str, node_id: str | None, customer_id: str | None = None) -> None:
        row = {"meter_id": meter_id, "role": role, "node_id": node_id, "customer_id": customer_id}
        self.meters.append(row | {"multiplier": "1"})

    def interval(
        self,
        meter_id: str,
        start: str,
        kwh: str | None,
        quality: str = "ACTUAL",
        channel: str = "ACTIVE_IMPORT",
    ) -> None:
        row = {"meter_id": meter_id, "interval_start": start, "period": start[:7], "energy_kwh": kwh}
        self.interval_reads.append(row | {"quality": quality, "channel": channel})

    def pair(
        self,
        meter_id: str,
        customer: str,
        read_from: str,
        read_to: str,
        kwh: str,
        register: str = "TOTAL",
        **kw: Any,
    ) -> None:
        row = {"meter_id": meter_id, "customer_id": customer, "register": register, "read_from": read_from}
        row |= {"read_to": read_to, "period": read_to[:7], "consumption_kwh": kwh}
        self.register_consumption.append(row | {"read_type_from": "REGULAR", "read_type_to": "REGULAR"} | kw)

    def energy(
        self,
        period: str,
        meter_id: str,
        kwh: str,
        estimated: str = "0",
        missing: int = 0,
        channel: str = "ACTIVE_IMPORT",
    ) -> None:
        row = {"period": period, "meter_id": meter_id, "energy_kwh": kwh, "estimated_energy_kwh": estimated}
        self.meter_monthly.append(row | {"missing_intervals": missing, "channel": channel})

    def build(self, periods: list[str]) -> duckdb.DuckDBPyConnection:
        con = self.con
        for dataset, rows in self.raw.items():
            make_raw(con, dataset, rows)
        make_table(con, "int_meters__current", METERS_CURRENT_COLUMNS, self.meters)
        make_table(con, "validated_meter_monthly", METER_MONTHLY_COLUMNS, self.meter_monthly)
        make_table(con, "validated_interval_reads", INTERVAL_READS_COLUMNS, self.interval_reads)
        make_table(
            con, "validated_register_consumption", REGISTER_CONSUMPTION_COLUMNS, self.register_consumption
        )
        # the meters table stands in for VEE's: it is given, not built
        given = ["int_meters__current"]
        self.prepared = [*build(con, marts.CURRENT_MODELS, given=given), *given]
        con.execute(
            f"create or replace table aggregates_{PLANS_AGGREGATE} as select * from {PLANS_AGGREGATE}"
        )
        for model, columns in (
            MONTHLY_AGGREGATES | OPERATIONS_AGGREGATES | CALENDAR_AGGREGATES | SIGNAL_AGGREGATES
        ).items():
            make_table(con, f"aggregates_{model}", columns, [])
        marts.build_periods(con, periods, self.prepared)
        for model in MONTHLY_AGGREGATES:
            con.execute(f"insert into aggregates_{model} by name select * from {model}")
        # the daily energy of every month is in the aggregates before the calendar spreads read it
        marts.build_calendar(con, periods, self.prepared)
        for model in CALENDAR_AGGREGATES:
            con.execute(f"insert into aggregates_{model} by name select * from {model}")
        marts.build_signals(con, periods)
        for model in SIGNAL_AGGREGATES:
            con.execute(f"insert into aggregates_{model} by name select * from {model}")
        make_table(con, "quality_results", QUALITY_COLUMNS, [])
        build(con, models_in("marts"))
        return con

    def kpi(self, period: str, region: str, *columns: str) -> tuple:
        row = self.con.execute(
            f"select {', '.join(columns)} from mart_kpi_monthly where period = ? and region_code = ?",
            [period, region],
        ).fetchone()
        assert row is not None, f"no mart_kpi_monthly row for {period} {region}"
        return row


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    con = connect(Settings(home=tmp_path, threads=1))
    yield World(con)
    con.close()


def kpi_world(world: World) -> World:
    """Two regions over two years: R1 (C1, residential) and R2 (C2, commercial)."""
    world.customer("C1", "R1")
    world.customer("C2", "R2", customer_class="COMMERCIAL", tariff_code="COM")
    for period, c1, c2 in (
        ("2024-01", ("100", "200000"), ("50", "150000")),
        ("2024-02", ("100", "210000"), ("100", "300000")),
        ("2025-01", ("120", "264000"), ("60", "180000")),
        ("2025-02", ("80", "200000"), ("140", "420000")),
    ):
        world.line(period, "C1", *c1)
        world.line(period, "C2", *c2, tariff_code="COM")
    world.node("NB", "BOUNDARY", None, "R1")
    world.node("NF1", "FEEDER", "NB", "R1")
    world.node("NF2", "FEEDER", "NB", "R2")
    world.meter("MB", "BOUNDARY", "NB")
    world.meter("MF1", "FEEDER", "NF1")
    world.meter("MF2", "FEEDER", "NF2")
    for period, boundary, f1, f2 in (
        ("2024-01", "200", "120", "70"),
        ("2024-02", "250", "110", "120"),
        ("2025-01", "200", "130", "65"),
        ("2025-02", "250", "90", "150"),
    ):
        world.energy(period, "MB", boundary)
        world.energy(period, "MF1", f1)
        world.energy(period, "MF2", f2)
    world.build(["2024-01", "2024-02", "2025-01", "2025-02"])
    return world


def test_kwh_sold_revenue_and_monthly_price(world: World) -> None:
    kpi_world(world)
    assert world.kpi("2025-02", "ALL", "kwh_sold", "revenue_vnd", "vat_vnd") == (
        D("220"),
        D("620000"),
        D("49600"),
    )
    assert world.kpi("2025-02", "R2", "kwh_sold", "revenue_vnd") == (D("140"), D("420000"))
    assert world.kpi("2025-02", "ALL", "avg_price_vnd_per_kwh")[0] == approx(620000 / 220)


def test_ytd_is_a_ratio_of_sums(world: World) -> None:
    kpi_world(world)
    sold, revenue, price = world.kpi(
        "2025-02", "ALL", "kwh_sold_ytd", "revenue_ytd_vnd", "avg_price_ytd_vnd_per_kwh"
    )
    assert (sold, revenue) == (D("400"), D("1064000"))
    # 1,064,000 / 400 = 2,660, not the mean of the monthly prices (2,466.67 and 2,818.18)
    assert price == approx(2660.0)
    received, loss_ytd = world.kpi("2025-02", "ALL", "kwh_received_ytd", "loss_rate_ytd_pct")
    assert received == D("450")
    assert loss_ytd == approx((450 - 400) / 450 * 100)
    assert world.kpi("2025-02", "ALL", "loss_rate_pct")[0] == approx((250 - 220) / 250 * 100)
    assert world.kpi("2025-01", "R1", "kwh_sold_ytd")[0] == D("120")


def test_yoy_against_the_same_months_of_the_previous_year(world: World) -> None:
    kpi_world(world)
    yoy, price_yoy, loss_yoy = world.kpi(
        "2025-02", "ALL", "kwh_sold_ytd_yoy_pct", "avg_price_ytd_yoy_vnd", "loss_rate_ytd_yoy_pts"
    )
    assert yoy == approx((400 / 350 - 1) * 100)
    assert price_yoy == approx(2660 - 860000 / 350)
    assert loss_yoy == approx((450 - 400) / 450 * 100 - (450 - 350) / 450 * 100)
    assert world.kpi("2025-01", "R2", "kwh_sold_ytd_yoy_pct")[0] == approx((60 / 50 - 1) * 100)
    # R1's loss: feeder NF1 received 130 + 90 in 2025 against 120 + 110 in 2024
    assert world.kpi("2025-02", "R1", "loss_rate_ytd_yoy_pts")[0] == approx(
        (220 - 200) / 220 * 100 - (230 - 200) / 230 * 100
    )


def test_yoy_is_null_without_history(world: World) -> None:
    kpi_world(world)
    for region in ("ALL", "R1", "R2"):
        assert world.kpi(
            "2024-02", region, "kwh_sold_ytd_yoy_pct", "avg_price_ytd_yoy_vnd", "loss_rate_ytd_yoy_pts"
        ) == (
            None,
            None,
            None,
        )


def test_yoy_compares_the_same_months_of_the_previous_year_that_have_sales(world: World) -> None:
    world.customer("C1", "R1")
    world.line("2024-02", "C1", "100", "200000")
    world.line("2025-01", "C1", "100", "200000")
    world.line("2025-02", "C1", "100", "250000")
    world.build(["2024-02", "2025-01", "2025-02"])
    # CONTRACT §6: NULL only when the previous year has no kWh sold in the same months. January 2024 has
    # none, so January 2025 has no year-on-year figure; Jan-Feb 2024 holds February's 100 kWh.
    assert world.kpi("2025-01", "R1", "kwh_sold_ytd_yoy_pct", "avg_price_ytd_yoy_vnd") == (None, None)
    assert world.kpi("2025-02", "ALL", "kwh_sold_ytd", "kwh_sold_ytd_yoy_pct", "avg_price_ytd_yoy_vnd") == (
        D("200"),
        100.0,
        250.0,
    )


def test_plan_attainment_and_null_without_plan(world: World) -> None:
    world.plan(2025, "ALL", "KWH_SOLD", "1800", snapshot="2025-01-01")
    world.plan(2025, "R1", "KWH_SOLD", "800", snapshot="2025-01-01")
    world.plan(2025, "ALL", "KWH_SOLD", "2000", snapshot="2025-03-01")
    world.plan(2025, "ALL", "AVG_PRICE", "2600", snapshot="2025-03-01")
    world.plan(2025, "ALL", "LOSS_RATE", "5", snapshot="2025-03-01")
    kpi_world(world)
    row = world.kpi(
        "2025-02",
        "ALL",
        "plan_kwh_sold",
        "plan_attainment_pct",
        "avg_price_ytd_vs_plan_vnd",
        "loss_rate_ytd_vs_plan_pts",
    )
    # the newest snapshot that lists (2025, ALL, KWH_SOLD) says 2,000
    assert row == (D("2000"), approx(400 / 2000 * 100), approx(2660 - 2600), approx(50 / 450 * 100 - 5))
    # R1's kWh target is only in the older snapshot, which is still the newest listing it
    r1 = world.kpi("2025-02", "R1", "plan_kwh_sold", "plan_attainment_pct", "avg_price_ytd_vs_plan_vnd")
    assert r1 == (D("800"), approx(200 / 800 * 100), None)
    r2 = world.kpi("2025-02", "R2", "plan_kwh_sold", "plan_attainment_pct", "loss_rate_ytd_vs_plan_pts")
    assert r2 == (None, None, None)
    assert world.kpi("2024-02", "ALL", "plan_kwh_sold", "plan_attainment_pct") == (None, None)


def test_company_is_the_sum_of_regions(world: World) -> None:
    kpi_world(world)
    world.line("2025-02", "C9", "10", "25000")  # a customer no snapshot lists
    world.build(["2024-01", "2024-02", "2025-01", "2025-02"])
    rows = world.con.execute(
        """
        select period,
            sum(kwh_sold) filter (where region_code = 'ALL'),
            sum(kwh_sold) filter (where region_code <> 'ALL'),
            sum(revenue_vnd) filter (where region_code = 'ALL'),
            sum(revenue_vnd) filter (where region_code <> 'ALL')
        from mart_kpi_monthly group by period order by period
        """
    ).fetchall()
    assert len(rows) == 4
    for _period, company_kwh, region_kwh, company_vnd, region_vnd in rows:
        assert (company_kwh, company_vnd) == (region_kwh, region_vnd)
    assert world.kpi("2025-02", "UNKNOWN", "kwh_sold", "revenue_vnd") == (D("10"), D("25000"))
    assert world.kpi("2025-02", "ALL", "kwh_sold")[0] == D("230")
    sales = world.con.execute(
        "select sum(kwh_sold) from mart_sales_monthly where period = '2025-02'"
    ).fetchone()
    assert sales == (D("230"),)


def test_latest_export_version_replaces_every_line_of_older_ones(world: World) -> None:
    world.customer("C1", "R1")
    # version 1 of CIS-X billed January and February; version 2 re-issues only February
    world.line("2025-01", "C1", "100", "200000", export_id="CIS-X", bill_id="B1")
    world.line("2025-02", "C1", "100", "200000", export_id="CIS-X", bill_id="B2")
    world.line(
        "2025-02", "C1", "90", "180000", export_id="CIS-X", export_version=2, bill_id="B2", _ingest_seq=2
    )
    world.line(
        "2025-02",
        "C1",
        "5",
        "10000",
        export_id="CIS-X",
        export_version=2,
        bill_id="B2",
        line_no=2,
        _ingest_seq=2,
    )
    # another export keeps January alive
    world.line("2025-01", "C1", "7", "14000", export_id="CIS-Y")
    world.build(["2025-01", "2025-02"])
    assert world.kpi("2025-01", "ALL", "kwh_sold", "revenue_vnd", "bill_lines") == (D("7"), D("14000"), 1)
    assert world.kpi("2025-02", "ALL", "kwh_sold", "revenue_vnd", "bill_lines") == (D("95"), D("190000"), 2)


def test_an_older_version_ingested_later_does_not_win(world: World) -> None:
    world.customer("C1", "R1")
    world.line("2025-02", "C1", "90", "180000", export_id="CIS-X", export_version=2, _ingest_seq=1)
    world.line("2025-02", "C1", "100", "200000", export_id="CIS-X", export_version=1, _ingest_seq=2)
    world.build(["2025-02"])
    assert world.kpi("2025-02", "ALL", "kwh_sold") == (D("90"),)


def test_a_redelivered_line_key_counts_once(world: World) -> None:
    world.customer("C1", "R1")
    key = {"export_id": "CIS-X", "bill_id": "B1", "line_no": 1}
    world.line("2025-01", "C1", "100", "200000", **key, _ingest_seq=1, _line_no=2)
    world.line("2025-01", "C1", "101", "202000", **key, _ingest_seq=1, _line_no=3)  # later line of the file
    world.line("2025-01", "C1", "102", "204000", **key, _ingest_seq=2, _line_no=2)  # later file
    world.line("2025-01", "C1", "1", "2000", export_id="CIS-X", bill_id="B1", line_no=2)
    world.build(["2025-01"])
    assert world.kpi("2025-01", "ALL", "kwh_sold", "bill_lines") == (D("103"), 2)


def test_a_redelivered_line_that_moves_period_leaves_the_old_one(world: World) -> None:
    world.customer("C1", "R1")
    key = {"export_id": "CIS-X", "bill_id": "B1", "line_no": 1}
    world.line("2025-01", "C1", "100", "200000", **key, _ingest_seq=1)
    world.line("2025-02", "C1", "100", "200000", **key, _ingest_seq=2)
    world.line("2025-01", "C1", "3", "6000", export_id="CIS-X", bill_id="B2")
    world.build(["2025-01", "2025-02"])
    assert world.kpi("2025-01", "ALL", "kwh_sold") == (D("3"),)
    assert world.kpi("2025-02", "ALL", "kwh_sold") == (D("100"),)


def test_adjustments_count_with_their_sign(world: World) -> None:
    world.customer("C1", "R1")
    world.line("2025-03", "C1", "200", "500000")
    world.line("2025-03", "C1", "-30", "-75000", bill_type="ADJUSTMENT", bill_id="A1")
    world.line("2025-03", "C1", "10", "25000", bill_type="ADJUSTMENT", bill_id="A2")
    world.build(["2025-03"])
    assert world.kpi("2025-03", "R1", "kwh_sold", "revenue_vnd") == (D("180"), D("450000"))
    sales = world.con.execute(
        """
        select kwh_sold, adjustment_kwh, adjustment_vnd, bills, bill_lines, customers_billed
        from mart_sales_monthly
        """
    ).fetchall()
    assert sales == [(D("180"), D("-20"), D("-50000"), 3, 3, 1)]


def test_sales_by_region_class_and_tariff(world: World) -> None:
    world.customer("C1", "R1")
    world.customer("C2", "R1")
    world.customer("C3", "R2", customer_class="INDUSTRIAL", tariff_code="IND")
    world.line("2025-03", "C1", "100", "200000")
    world.line("2025-03", "C2", "50", "110000")
    world.line("2025-03", "C3", "1000", "1500000", tariff_code="IND-PEAK", component="PEAK")
    world.line("2025-03", "C3", "2000", "2400000", tariff_code="IND-NORM", component="NORMAL")
    world.build(["2025-03"])
    rows = world.con.execute(
        """
        select region_code, customer_class, tariff_code, kwh_sold, revenue_vnd, avg_price_vnd_per_kwh,
            customers_billed
        from mart_sales_monthly order by all
        """
    ).fetchall()
    assert rows == [
        ("R1", "RESIDENTIAL", "RES", D("150"), D("310000"), approx(310000 / 150), 2),
        ("R2", "INDUSTRIAL", "IND-NORM", D("2000"), D("2400000"), approx(1200.0), 1),
        ("R2", "INDUSTRIAL", "IND-PEAK", D("1000"), D("1500000"), approx(1500.0), 1),
    ]


def test_region_comes_from_the_newest_snapshot_listing_the_customer(world: World) -> None:
    world.customer("C1", "R1", snapshot="2025-01-01")
    world.customer("C1", "R2", snapshot="2025-03-01", customer_class="COMMERCIAL")  # moved
    world.customer("C2", "R1", snapshot="2025-01-01")  # not in the newer snapshot: keeps R1
    world.customer("C3", "R1", snapshot="2025-03-01", _ingest_seq=1)
    world.customer("C3", "R3", snapshot="2025-03-01", _ingest_seq=2)  # same snapshot, later file
    world.line("2025-01", "C1", "100", "200000")
    world.line("2025-01", "C2", "10", "20000")
    world.line("2025-01", "C3", "1", "2000")
    world.payment("P1", "C1", "2025-01-20 10:00:00", "216000", "CARD")
    world.build(["2025-01"])
    regions = world.con.execute(
        """
        select region_code, kwh_sold, paying_customers
        from mart_kpi_monthly where region_code <> 'ALL' order by all
        """
    ).fetchall()
    assert regions == [("R1", D("10"), 0), ("R2", D("100"), 1), ("R3", D("1"), 0)]
    classes = world.con.execute(
        "select region_code, customer_class from mart_sales_monthly order by all"
    ).fetchall()
    assert classes == [("R1", "RESIDENTIAL"), ("R2", "COMMERCIAL"), ("R3", "RESIDENTIAL")]


def test_cashless_by_customers_and_by_amount(world: World) -> None:
    world.customer("C1", "R1")
    world.customer("C2", "R2")
    world.customer("C3", "R2")
    world.payment("P1", "C1", "2025-02-03 08:00:00", "100", "BANK_TRANSFER")
    world.payment("P2", "C1", "2025-02-04 08:00:00", "200", "E_WALLET")
    world.payment("P3", "C2", "2025-02-05 08:00:00", "50", "CASH_COUNTER")
    world.payment("P4", "C2", "2025-02-06 08:00:00", "150", "CARD")
    world.payment("P5", "C3", "2025-02-07 08:00:00", "100", "CASH_COLLECTOR")
    # outside February: the last instant of January and the first of March
    world.payment("P6", "C3", "2025-01-31 23:59:59", "999", "CARD")
    world.payment("P7", "C3", "2025-03-01 00:00:00", "999", "CARD")
    world.build(["2025-01", "2025-02", "2025-03"])
    company = world.kpi(
        "2025-02",
        "ALL",
        "paying_customers",
        "cashless_customers",
        "cashless_customer_pct",
        "cashless_amount_pct",
    )
    assert company == (3, 1, approx(100 / 3), approx(450 / 600 * 100))
    assert world.kpi("2025-02", "R1", "cashless_customer_pct", "cashless_amount_pct") == (100.0, 100.0)
    assert world.kpi("2025-02", "R2", "cashless_customer_pct", "cashless_amount_pct") == (
        0.0,
        approx(150 / 300 * 100),
    )
    assert world.kpi("2025-01", "R2", "paying_customers", "paid_amount_vnd", "cashless_customer_pct") == (
        1,
        D("999"),
        100.0,
    )
    # a month with payments only still has its rows, with no sales and no received energy
    assert world.kpi("2025-03", "ALL", "kwh_sold", "avg_price_vnd_per_kwh", "kwh_received") == (
        D("0"),
        None,
        None,
    )


def test_a_redelivered_payment_counts_once_as_last_delivered(world: World) -> None:
    world.customer("C1", "R1")
    world.payment("P1", "C1", "2025-02-03 08:00:00", "100", "CASH_COUNTER", _ingest_seq=1)
    world.payment("P1", "C1", "2025-02-03 08:00:00", "100", "BANK_TRANSFER", _ingest_seq=2)
    world.payment("P2", "C1", "2025-02-28 08:00:00", "40", "CARD", _ingest_seq=1)
    world.payment("P2", "C1", "2025-03-01 08:00:00", "40", "CARD", _ingest_seq=3)  # corrected into March
    world.build(["2025-02", "2025-03"])
    feb = world.kpi("2025-02", "ALL", "paying_customers", "paid_amount_vnd", "cashless_customer_pct")
    assert feb == (1, D("100"), 100.0)
    assert world.kpi("2025-03", "R1", "paid_amount_vnd") == (D("40"),)


def energy_world(world: World) -> World:
    """Boundary NB, feeder NF1 (R1) with DTs D1 and D2, DT D3 without a meter; C1 on D1, C2 and C3 on D2."""
    world.node("NB", "BOUNDARY", None, "R1")
    world.node("NF1", "FEEDER", "NB", "R1")
    world.node("D1", "DT", "NF1", "R1")
    world.node("D2", "DT", "NF1", "R1")
    world.node("D3", "DT", "NF1", "R1")
    world.customer("C1", "R1", dt_id="D1")
    world.customer("C2", "R1", dt_id="D2")
    world.customer("C3", "R1", dt_id="D2")
    world.customer("C4", "R1", dt_id="D3")
    world.meter("MB", "BOUNDARY", "NB")
    world.meter("MF1", "FEEDER", "NF1")
    world.meter("MD1", "DT", "D1")
    world.meter("MD2A", "DT", "D2")
    world.meter("MD2B", "DT", "D2")  # the meter that replaced MD2A during the month
    world.energy("2025-04", "MB", "120.5")
    world.energy("2025-04", "MF1", "100", estimated="10", missing=2)
    world.energy("2025-04", "MD1", "45")
    world.energy("2025-04", "MD2A", "20", estimated="3.5")
    world.energy("2025-04", "MD2B", "15")
    world.line("2025-04", "C1", "40", "80000")
    world.line("2025-04", "C2", "30", "60000")
    world.line("2025-04", "C3", "20", "40000")
    world.line("2025-04", "C4", "5", "10000")
    world.build(["2025-04"])
    return world


def test_energy_balance_of_feeders_and_dts(world: World) -> None:
    energy_world(world)
    rows = world.con.execute(
        """
        select node_id, node_type, region_code, kwh_in, kwh_billed, loss_kwh, loss_rate_pct,
            estimated_share_pct, customers_billed, meters
        from mart_energy_balance_monthly order by node_id
        """
    ).fetchall()
    assert rows == [
        ("D1", "DT", "R1", D("45"), D("40"), D("5"), approx(5 / 45 * 100), 0.0, 1, 1),
        ("D2", "DT", "R1", D("35"), D("50"), D("-15"), approx(-15 / 35 * 100), approx(3.5 / 35 * 100), 2, 2),
        ("D3", "DT", "R1", None, D("5"), None, None, None, 1, 0),
        ("NF1", "FEEDER", "R1", D("100"), D("95"), D("5"), approx(5.0), approx(10.0), 4, 1),
    ]


def test_received_energy_from_boundary_and_feeder_meters(world: World) -> None:
    energy_world(world)
    assert world.kpi("2025-04", "ALL", "kwh_received", "kwh_sold", "loss_rate_pct") == (
        D("120.5"),
        D("95"),
        approx((120.5 - 95) / 120.5 * 100),
    )
    assert world.kpi("2025-04", "R1", "kwh_received", "loss_rate_pct") == (D("100"), approx(5.0))
    received = world.con.execute(
        """
        select region_code, estimated_kwh, missing_intervals, meters
        from aggregates_int_energy_received__monthly order by all
        """
    ).fetchall()
    assert received == [("ALL", D("0"), 0, 1), ("R1", D("10"), 2, 1)]


def test_a_region_with_only_received_energy_has_a_row(world: World) -> None:
    world.node("NF9", "FEEDER", "NB", "R9")
    world.meter("MF9", "FEEDER", "NF9")
    world.energy("2025-05", "MF9", "12")
    world.build(["2025-05"])
    rows = world.con.execute(
        "select region_code, kwh_sold, kwh_received from mart_kpi_monthly order by all"
    ).fetchall()
    # no boundary meter reported: the company's received energy is unknown, not zero
    assert rows == [("ALL", D("0"), None), ("R9", D("0"), D("12"))]


def test_rebuilding_a_period_gives_the_same_rows(world: World) -> None:
    kpi_world(world)
    query = "select * from int_sales__monthly where period = '2025-02' order by all"
    first = world.con.execute(query).fetchall()
    marts.build_periods(world.con, ["2025-02"], world.prepared)
    assert world.con.execute(query).fetchall() == first


def test_one_pass_over_several_periods_gives_each_period_s_own_rows(world: World) -> None:
    kpi_world(world)
    # a new version re-issues January 2025's export in February only, a line moves, a payment moves month
    world.line("2025-02", "C1", "9", "18000", export_id="CIS-2025-01-R1", export_version=2, _ingest_seq=2)
    world.line("2024-02", "C2", "4", "8000", export_id="CIS-M", bill_id="BM", _ingest_seq=1)
    world.line("2025-01", "C2", "4", "8000", export_id="CIS-M", bill_id="BM", _ingest_seq=2)
    world.payment("P1", "C1", "2025-01-31 23:00:00", "100", "CARD", _ingest_seq=1)
    world.payment("P1", "C1", "2025-02-01 08:00:00", "100", "CASH_COUNTER", _ingest_seq=2)
    world.payment("P2", "C2", "2024-02-03 08:00:00", "50", "E_WALLET")
    periods = ["2024-01", "2024-02", "2025-01", "2025-02"]
    world.build(periods)
    one_pass = {
        m: world.con.execute(f"select * from aggregates_{m} order by all").fetchall()
        for m in MONTHLY_AGGREGATES
    }
    by_period: dict[str, list[tuple]] = {m: [] for m in MONTHLY_AGGREGATES}
    for period in periods:
        marts.build_periods(world.con, [period], world.prepared)
        for model in MONTHLY_AGGREGATES:
            by_period[model] += world.con.execute(f"select * from {model}").fetchall()
    assert one_pass == {m: sorted(rows) for m, rows in by_period.items()}
    assert world.kpi("2025-01", "ALL", "kwh_sold")[0] == D("4")  # only the moved line: v2 left January
    assert world.kpi("2025-02", "ALL", "kwh_sold")[0] == D("229")
    assert world.kpi("2024-02", "ALL", "kwh_sold")[0] == D("200")


@pytest.mark.parametrize("model", sorted(MONTHLY_AGGREGATES | SIGNAL_AGGREGATES))
def test_aggregate_columns_are_the_declared_ones(world: World, model: str) -> None:
    world.payment("P1", "C1", "2025-04-03 08:00:00", "100", "CARD")
    energy_world(world)
    declared = (MONTHLY_AGGREGATES | SIGNAL_AGGREGATES)[model]
    described = world.con.execute(f"describe {model}").fetchall()
    assert {r[0]: r[1] for r in described} == declared
    assert [r[0] for r in described] == list(declared)


def test_marts_carry_no_personal_data(world: World) -> None:
    energy_world(world)
    columns = {
        r[0]
        for r in world.con.execute(
            "select column_name from duckdb_columns() where table_name like 'mart_%' "
            "and table_name <> 'mart_inspection_candidates'"
        ).fetchall()
    }
    assert not columns & {"customer_name", "address", "phone", "customer_id"}
    # the inspection list names the customer to visit, never a name, address or phone
    listed = {
        r[0]
        for r in world.con.execute(
            "select column_name from duckdb_columns() where table_name = 'mart_inspection_candidates'"
        ).fetchall()
    }
    assert "customer_id" in listed and not listed & {"customer_name", "address", "phone"}
    assert {"kwh_sold", "cashless_amount_pct", "estimated_share_pct", "checked_at"} <= columns


def test_export_counts_against_import_and_reactive_energy_counts_nowhere(world: World) -> None:
    """CONTRACT.md §6 v2: kwh_received and kwh_in are ACTIVE_IMPORT minus ACTIVE_EXPORT; kvarh counts
    nowhere."""
    energy_world(world)
    # rooftop solar behind D1 and at the boundary; reactive readings on D1 and the feeder
    world.energy("2025-04", "MD1", "7.25", estimated="0.25", missing=1, channel="ACTIVE_EXPORT")
    world.energy("2025-04", "MD1", "900", channel="REACTIVE_IMPORT")
    world.energy("2025-04", "MF1", "300", channel="REACTIVE_EXPORT")
    world.energy("2025-04", "MB", "0.5", channel="ACTIVE_EXPORT")
    world.build(["2025-04"])
    d1 = world.con.execute(
        "select kwh_in, loss_kwh, estimated_share_pct, meters from mart_energy_balance_monthly "
        "where node_id = 'D1'"
    ).fetchone()
    # 45 - 7.25 in; 37.75 - 40 billed; estimated 0 - 0.25 of 37.75
    assert d1 == (D("37.75"), D("-2.25"), approx(-0.25 / 37.75 * 100), 1)
    feeder = world.con.execute(
        "select kwh_in from mart_energy_balance_monthly where node_id = 'NF1'"
    ).fetchone()
    assert feeder == (D("100"),)
    assert world.kpi("2025-04", "ALL", "kwh_received") == (D("120"),)
    assert world.kpi("2025-04", "R1", "kwh_received") == (D("100"),)


def calendar_world(
    world: World, c4_first_read: str = "METER_IN", c2_first_read: str = "2025-03-22 00:00:00"
) -> World:
    """DT D1 (metered: 10 kWh a day from March 22, 20 in April, 30 in May) and D2 (no meter) on feeder NF1
    (R1). C1 (D1) is read on the 22nd, 12th and 12th; C2 (D2, residential like D1) shares C1's periods; C3
    (no DT, commercial, R2) has one period from April 20 noon to May 5 noon; C4 (D1) loses its meter on
    April 15 (and got it on April 1); C5 (D2) has a CUSTOMER interval meter that measured 55 kWh in April."""
    world.node("NB", "BOUNDARY", None, "R1")
    world.node("NF1", "FEEDER", "NB", "R1")
    world.node("D1", "DT", "NF1", "R1")
    world.node("D2", "DT", "NF1", "R1")
    world.customer("C1", "R1", dt_id="D1")
    world.customer("C2", "R1", dt_id="D2")
    world.customer("C3", "R2", dt_id=None, customer_class="COMMERCIAL")
    world.customer("C4", "R1", dt_id="D1")
    world.customer("C5", "R1", dt_id="D2")
    world.meter("MB", "BOUNDARY", "NB")
    world.meter("MF1", "FEEDER", "NF1")
    world.meter("MD1", "DT", "D1")
    for meter in ("M1", "M2", "M3", "M4"):
        world.meter(meter, "CUSTOMER", None, customer_id="C" + meter[1])
    world.meter("MC5", "CUSTOMER", None, customer_id="C5")
    for day in range(22, 32):
        world.interval("MD1", f"2025-03-{day:02d} 12:00:00", "10")
    for day in range(1, 31):
        world.interval("MD1", f"2025-04-{day:02d} 12:00:00", "20")
    for day in range(1, 12):
        world.interval("MD1", f"2025-05-{day:02d} 12:00:00", "30")
    world.pair("M1", "C1", "2025-03-22 00:00:00", "2025-04-12 00:00:00", "200")
    world.pair("M1", "C1", "2025-04-12 00:00:00", "2025-05-12 00:00:00", "300")
    world.pair("M2", "C2", c2_first_read, "2025-04-12 00:00:00", "50")
    world.pair("M2", "C2", "2025-04-12 00:00:00", "2025-05-12 00:00:00", "71")
    world.pair("M2", "C2", "2025-04-12 00:00:00", "2025-05-12 00:00:00", "70", register="PEAK")
    world.pair("M3", "C3", "2025-04-20 12:00:00", "2025-05-05 12:00:00", "150")
    world.pair(
        "M4",
        "C4",
        "2025-04-01 00:00:00",
        "2025-04-15 00:00:00",
        "28",
        read_type_from=c4_first_read,
        read_type_to="METER_OUT",
    )
    world.pair("MC5", "C5", "2025-04-01 00:00:00", "2025-05-01 00:00:00", "1000")
    world.energy("2025-04", "MC5", "55")
    world.energy("2025-04", "MD1", "600")
    world.energy("2025-04", "MF1", "700")
    world.energy("2025-04", "MB", "800")
    for customer in ("C1", "C2", "C3", "C4", "C5"):
        world.line("2025-04", customer, "10", "20000")
    world.build(["2025-03", "2025-04", "2025-05"])
    return world


def test_daily_dt_energy_is_import_less_export_and_leaves_reactive_out(world: World) -> None:
    """The profile that spreads reading periods is the DT's net energy: rooftop solar behind D1 exports 5 kWh
    on each April day it reads; its reactive channel counts nowhere."""
    for day in range(1, 31):
        world.interval("MD1", f"2025-04-{day:02d} 13:00:00", "5", channel="ACTIVE_EXPORT")
        world.interval("MD1", f"2025-04-{day:02d} 13:00:00", "100", channel="REACTIVE_IMPORT")
    calendar_world(world)
    days = world.con.execute(
        "select day, kwh_in from aggregates_int_energy_in__daily where node_id = 'D1' and period = '2025-04' "
        "order by day"
    ).fetchall()
    assert days == [(date(2025, 4, day), D(15)) for day in range(1, 31)]


def test_reading_periods_are_spread_over_calendar_months_by_the_dt_profile(world: World) -> None:
    calendar_world(world)
    rows = world.con.execute(
        """
        select customer_id, dt_id, feeder_id, region_code, kwh_calendar, profile, reading_periods, is_covered
        from aggregates_int_consumption__calendar_monthly where period = '2025-04' order by customer_id
        """
    ).fetchall()
    # First pass, by D1's energy: C4's 28 kWh are 2 a day over April 1-14; C1's first period 6.25 a March
    # day and 12.5 an April day, its second 300 x 20 / 710 an April day. The periods take 528 of D1's 1,030
    # kWh (f = 264/515; the rest is loss). Each period then takes f x D1's energy less the other periods'
    # first pass: C1's first period 10f a March day and 20f - 2 an April day (10 x 10f and 11 x (20f - 2)),
    # its second 20f - 2 on April 12-14, 20f on April 15-30 and 30f in May (3 x (20f - 2) + 16 x 20f of that
    # + 11 x 30f); times 515: 46,750 of 73,150 and 97,230 of 184,350.
    c1 = (D(200 * 46750) / D(73150) + D(300 * 97230) / D(184350)).quantize(D("0.000001"))
    assert rows == [
        ("C1", "D1", "NF1", "R1", c1, "DT", 2, True),
        # D2 has no meter: the profile of the DTs where households are the most common class (D1): 220 of
        # 320 kWh and 380 of 710
        ("C2", "D2", "NF1", "R1", D("72.375"), "CLASS", 2, True),
        # no DT and no DT of commercial customers: by time, 10.5 of 15 days; the reads start after April 1
        ("C3", None, None, "R2", D("105"), "TIME", 1, False),
        # the meter came off on April 15: covered
        ("C4", "D1", "NF1", "R1", D("28"), "DT", 1, True),
        # an interval meter: measured, its register pair is not spread
        ("C5", "D2", "NF1", "R1", D("55"), "INTERVAL", 0, True),
    ]
    march = world.con.execute(
        "select kwh_calendar, is_covered from aggregates_int_consumption__calendar_monthly "
        "where period = '2025-03' and customer_id = 'C1'"
    ).fetchone()
    assert march == ((D(200 * 26400) / D(73150)).quantize(D("0.000001")), False)


def test_calendar_month_balance_of_dts_feeders_and_the_company(world: World) -> None:
    calendar_world(world)
    c1 = (D(200 * 46750) / D(73150) + D(300 * 97230) / D(184350)).quantize(D("0.000001"))
    rows = world.con.execute(
        """
        select node_id, kwh_in, kwh_consumed_calendar, loss_calendar_kwh, loss_rate_calendar_pct,
            customers_uncovered, kwh_billed
        from mart_energy_balance_monthly where period = '2025-04' order by node_id
        """
    ).fetchall()
    d1 = c1 + 28
    d2 = D("72.375") + 55
    f1 = d1 + d2
    assert rows == [
        ("D1", D("600"), d1, 600 - d1, approx(float((600 - d1) / 600 * 100)), 0, D("20")),
        ("D2", None, d2, None, None, 0, D("20")),
        ("NF1", D("700"), f1, 700 - f1, approx(float((700 - f1) / 700 * 100)), 0, D("40")),
    ]
    # C3's reads do not cover April: R2 and the company (1 customer of 5) have no calendar figure
    assert world.kpi("2025-04", "R1", "kwh_consumed_calendar", "loss_rate_calendar_pct") == (
        f1,
        approx(float((700 - f1) / 700 * 100)),
    )
    assert world.kpi("2025-04", "R2", "kwh_consumed_calendar", "loss_rate_calendar_pct") == (None, None)
    assert world.kpi("2025-04", "ALL", "kwh_consumed_calendar", "loss_rate_calendar_pct") == (None, None)


def test_a_reading_period_that_starts_before_the_dt_energy_leaves_its_months_not_available(
    world: World,
) -> None:
    # C2's first period starts on March 12, ten days before the first DT energy of the lake (March 22): its
    # April share is a guess by time (11 of 31 days), so C2 is not covered and D2, NF1 and R1 have no
    # calendar figure for April, their uncovered customers counted
    calendar_world(world, c2_first_read="2025-03-12 00:00:00")
    row = world.con.execute(
        "select kwh_calendar, profile, is_covered from aggregates_int_consumption__calendar_monthly "
        "where period = '2025-04' and customer_id = 'C2'"
    ).fetchone()
    assert row == ((D(50 * 11) / D(31)).quantize(D("0.000001")) + 38, "TIME", False)
    rows = world.con.execute(
        "select node_id, kwh_consumed_calendar, loss_rate_calendar_pct, customers_uncovered "
        "from mart_energy_balance_monthly where period = '2025-04' order by node_id"
    ).fetchall()
    assert [(r[0], r[1] is None, r[2] is None, r[3]) for r in rows] == [
        ("D1", False, False, 0),
        ("D2", True, True, 1),
        ("NF1", True, True, 1),
    ]
    assert world.kpi("2025-04", "R1", "kwh_consumed_calendar", "loss_rate_calendar_pct") == (None, None)


def test_a_reading_period_with_days_not_every_customer_has_read_takes_the_dt_energy_itself(
    world: World,
) -> None:
    # C4's reads start on April 1 with a regular read: the DT's customers are known from April 1 only, so
    # C1's first period (from March 22) is spread by D1's energy (10 x 10 and 11 x 20); the periods take
    # 137.5 + 300 + 28 of D1's 930 kWh from April 1 (f = 931/1860), so its second takes 3 x (20f - 2) +
    # 16 x 20f of that + 11 x 30f: times 1,860, 342,620 of 649,850
    calendar_world(world, c4_first_read="REGULAR")
    row = world.con.execute(
        "select kwh_calendar, profile from aggregates_int_consumption__calendar_monthly "
        "where period = '2025-04' and customer_id = 'C1'"
    ).fetchone()
    assert row == ((D(200 * 220) / D(320) + D(300 * 342620) / D(649850)).quantize(D("0.000001")), "DT")
