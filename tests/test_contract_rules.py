"""CONTRACT.md rules that had no test of their own: each broken once (the quarantine row and its reason)
and kept once (the accepted row), and the year-on-year loss column without last year's energy received."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.ingest.run import ingest
from etl.lake import raw_files
from etl.pipeline import run
from etl.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", memory_limit="1GB", threads=2)


def land(settings: Settings, rel: str, lines: list[str]) -> None:
    path = settings.landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def accepted(settings: Settings, dataset: str, column: str) -> list:
    files = [str(p) for p in raw_files(settings, dataset)]
    sql = f"select {column} from read_parquet(?, hive_partitioning = false) order by _line_no"
    return [r[0] for r in duckdb.sql(sql, params=[files]).fetchall()] if files else []


def quarantined(settings: Settings, dataset: str) -> list[tuple[int, str, str]]:
    folder = settings.lake / "quarantine" / dataset
    if not folder.exists():
        return []
    sql = f"select line_no, rule, reason from read_parquet('{folder}/*.parquet') order by line_no"
    return [tuple(r) for r in duckdb.sql(sql).fetchall()]


METERS_HEADER = (
    "meter_id,role,customer_id,node_id,reading_mode,multiplier,max_kw,register_digits,installed_on,removed_on"
)


def test_meters_node_id_max_kw_and_register_digits(settings: Settings) -> None:
    land(
        settings,
        "reference/meters_20250901.csv",
        [
            METERS_HEADER,
            "M2,DT,,,INTERVAL,40,,6,2018-01-01,",  # a DT meter without the node it measures
            "M3,FEEDER,,,INTERVAL,1,,6,2018-01-01,",
            "M4,BOUNDARY,,,INTERVAL,1,,6,2018-01-01,",
            "M5,DT,,DT1,INTERVAL,40,0,6,2018-01-01,",  # max_kw must be > 0 when given
            "M6,CUSTOMER,C1,,REGISTER,1,,0,2018-01-01,",  # register_digits 1..12
            "M7,CUSTOMER,C1,,REGISTER,1,,13,2018-01-01,",
            "M8,CUSTOMER,C1,,REGISTER,1,,12,2018-01-01,",  # the bounds themselves are fine
            "M9,CUSTOMER,C1,,REGISTER,1,,1,2018-01-01,",
            "M10,DT,,DT1,INTERVAL,40,0.001,6,2018-01-01,",
            "M11,BOUNDARY,,B1,INTERVAL,1,,6,2018-01-01,",
        ],
    )
    ingest(settings, "run-1")
    required = "which breaks the rule node_id required when role is DT, FEEDER or BOUNDARY"
    assert quarantined(settings, "meters") == [
        (2, "required", f"role is 'DT' and node_id is empty, {required}"),
        (3, "required", f"role is 'FEEDER' and node_id is empty, {required}"),
        (4, "required", f"role is 'BOUNDARY' and node_id is empty, {required}"),
        (5, "range", "max_kw is '0', which breaks the rule max_kw > 0 when given"),
        (6, "range", "register_digits is '0', which breaks the rule register_digits between 1 and 12"),
        (7, "range", "register_digits is '13', which breaks the rule register_digits between 1 and 12"),
    ]
    assert accepted(settings, "meters", "meter_id") == ["M8", "M9", "M10", "M11"]


def test_network_parents_boundary_none_dt_and_feeder_one(settings: Settings) -> None:
    land(
        settings,
        "reference/network_20250901.csv",
        [
            "node_id,node_type,parent_id,region_code,name",
            "B1,BOUNDARY,,ALL,Boundary 1",
            "B2,BOUNDARY,F1,ALL,Boundary with a parent",
            "F1,FEEDER,B1,DH,Feeder 1",
            "F2,FEEDER,,DH,Feeder without a parent",
            "T1,DT,F1,DH,DT 1",
            "T2,DT,,DH,DT without a parent",
        ],
    )
    ingest(settings, "run-1")
    rule = "which breaks the rule parent_id required for FEEDER and DT, NULL for BOUNDARY"
    assert quarantined(settings, "network") == [
        (3, "network_parent", f"node_type is 'BOUNDARY' and parent_id is 'F1', {rule}"),
        (5, "network_parent", f"node_type is 'FEEDER' and parent_id is empty, {rule}"),
        (7, "network_parent", f"node_type is 'DT' and parent_id is empty, {rule}"),
    ]
    assert accepted(settings, "network", "node_id") == ["B1", "F1", "T1"]


def test_tariffs_last_tier_open_and_prices_not_negative(settings: Settings) -> None:
    land(
        settings,
        "reference/tariffs_20250901.csv",
        [
            "tariff_code,customer_class,component,block_from_kwh,block_to_kwh,price_vnd_per_kwh,valid_from,valid_to",
            "RES,RESIDENTIAL,BLOCK_5,301,400,3050,2025-05-10,",
            "RES,RESIDENTIAL,BLOCK_6,401,,3350,2025-05-10,",  # the last tier has no upper bound
            "RES,RESIDENTIAL,FLAT,,,-0.000001,2025-05-10,",
            "FREE,OTHER,FLAT,,,0,2025-05-10,",
        ],
    )
    ingest(settings, "run-1")
    assert quarantined(settings, "tariffs") == [
        (4, "range", "price_vnd_per_kwh is '-0.000001', which breaks the rule price_vnd_per_kwh >= 0"),
    ]
    assert accepted(settings, "tariffs", "block_to_kwh") == [Decimal("400"), None, None]
    assert accepted(settings, "tariffs", "price_vnd_per_kwh") == [Decimal(3050), Decimal(3350), Decimal(0)]


def test_fifteen_minute_intervals_and_register_indexes_not_negative(settings: Settings) -> None:
    land(
        settings,
        "readings/interval_reads_20250901.csv",
        [
            "meter_id,interval_start,interval_minutes,kwh,quality",
            "M1,2025-09-01T00:00:00,15,0.25,A",
            "M1,2025-09-01T00:15:00,15,0.5,",
            "M1,2025-09-01T00:30:00,20,0.5,A",
        ],
    )
    land(
        settings,
        "readings/register_reads_20250901.csv",
        [
            "meter_id,read_at,register,index_value,read_type",
            "M2,2025-09-01T08:00:00,TOTAL,0,REGULAR",
            "M2,2025-09-02T08:00:00,TOTAL,-0.5,REGULAR",
        ],
    )
    ingest(settings, "run-1")
    assert accepted(settings, "interval_reads", "interval_minutes") == [15, 15]
    assert quarantined(settings, "interval_reads") == [
        (
            4,
            "range",
            "interval_minutes is '20', which breaks the rule interval_minutes in (5, 10, 15, 30, 60)",
        ),
    ]
    assert accepted(settings, "register_reads", "index_value") == [Decimal(0)]
    assert quarantined(settings, "register_reads") == [
        (3, "range", "index_value is '-0.5', which breaks the rule index_value >= 0"),
    ]


def test_loss_yoy_is_null_when_last_year_sold_energy_but_received_none(settings: Settings) -> None:
    """2024 has bills but no boundary readings; 2025 has both: the 2025 loss rate exists, its
    year-on-year difference does not (CONTRACT.md §6: NULL without kWh received the year before)."""
    land(
        settings,
        "reference/network_20240101.csv",
        [
            "node_id,node_type,parent_id,region_code,name",
            "B1,BOUNDARY,,ALL,B",
            "F1,FEEDER,B1,DH,F",
            "T1,DT,F1,DH,T",
        ],
    )
    land(
        settings,
        "reference/customers_20240101.csv",
        [
            "customer_id,customer_name,address,phone,customer_class,tariff_code,region_code,dt_id,connected_on,disconnected_on",
            "C1,An,x,1,RESIDENTIAL,RES,DH,T1,2020-01-01,",
        ],
    )
    land(
        settings,
        "reference/meters_20240101.csv",
        [
            METERS_HEADER,
            "MB,BOUNDARY,,B1,INTERVAL,1,,6,2020-01-01,",
            "MC,CUSTOMER,C1,,REGISTER,1,,6,2020-01-01,",
        ],
    )
    land(
        settings,
        "reference/tariffs_20240101.csv",
        [
            "tariff_code,customer_class,component,block_from_kwh,block_to_kwh,price_vnd_per_kwh,valid_from,valid_to",
            "RES,RESIDENTIAL,FLAT,,,2000,2020-01-01,",
        ],
    )
    header = (
        "export_id,export_version,billing_period,bill_id,line_no,customer_id,bill_type,period_start,period_end,"
        "tariff_code,component,kwh,unit_price_vnd,amount_vnd,vat_vnd,issued_on"
    )
    for year in (2024, 2025):
        land(
            settings,
            f"billing/bill_lines_{year}0131.csv",
            [
                header,
                f"CIS-{year}-01,1,{year}-01,B{year},1,C1,REGULAR,{year}-01-01,{year}-01-31,RES,FLAT,90,2000,"
                f"180000,18000,{year}-02-01",
            ],
        )
    land(
        settings,
        "readings/interval_reads_20250131.csv",
        ["meter_id,interval_start,interval_minutes,kwh,quality", "MB,2025-01-15T00:00:00,60,100,A"],
    )
    assert run(settings, run_id="test__yoy").published == settings.marts_path
    con = duckdb.connect(str(settings.marts_path), read_only=True)
    rows = con.execute(
        "select period, kwh_sold, kwh_received, loss_rate_ytd_pct, loss_rate_ytd_yoy_pts "
        "from mart_kpi_monthly where region_code = 'ALL' order by period"
    ).fetchall()
    con.close()
    assert rows == [
        ("2024-01", Decimal(90), None, None, None),
        ("2025-01", Decimal(90), Decimal(100), pytest.approx(10.0), None),
    ]
