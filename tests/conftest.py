"""Test-wide setup: Airflow and GX must never write outside temporary folders."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from etl.settings import Settings

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="meterflow-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.path.dirname(__file__), "..", "dags"))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


# A hand-made published marts file (CONTRACT.md §6 tables and columns, plus the paying and cashless
# customer counts and the plan targets of mart_kpi_monthly) for the report, the data dictionary, the SQL
# shell and the analysts' queries. The company row of 2025-09 carries the figures of the company's report
# for the first nine months of 2025 (1.63 billion kWh, 2,285.95 VND/kWh, 3.51 % loss rate, 100 % cashless);
# the other rows follow simple formulas, so that their YTD, YoY and plan columns agree with the monthly ones.
FIXTURE_MARTS_SQL = """
create table months as
select strftime(d, '%Y-%m') as period, year(d) as yr, month(d) as mo
from range(date '2024-01-01', date '2025-10-01', interval 1 month) as t (d);

create table regional as
select
    m.period,
    m.yr,
    m.mo,
    r.region_code,
    (r.base_kwh + m.mo * 1000000 + (m.yr - 2024) * 2000000)::decimal(38, 6) as kwh_sold,
    (r.base_kwh + m.mo * 1000000 + (m.yr - 2024) * 2000000)::decimal(38, 6)
        * (2100 + m.mo * 5 + (m.yr - 2024) * 150)::decimal(38, 6) as revenue_vnd,
    (r.base_kwh + m.mo * 1000000 + (m.yr - 2024) * 2000000)::decimal(38, 6)
        * (1.03 + m.mo * 0.002 + (2025 - m.yr) * 0.003) as kwh_received,
    r.cash_base + m.mo * 0.25 as cashless_customer_pct,
    r.cash_base + 1 + m.mo * 0.25 as cashless_amount_pct,
from months as m
cross join (values ('DH', 90000000, 96.0), ('VL', 60000000, 95.0)) as r (region_code, base_kwh, cash_base);

create table monthly as
select * from regional
union all
select period, yr, mo, 'ALL', sum(kwh_sold), sum(revenue_vnd), sum(kwh_received),
       avg(cashless_customer_pct), avg(cashless_amount_pct)
from regional group by all;

create table plans (yr int, region_code varchar, kwh decimal(38, 6), price double, loss double);
insert into plans values (2025, 'ALL', 2087000000, 2277.0, 4.55), (2025, 'DH', 1250000000, 2270.0, 4.0);

create table ytd as
select
    *,
    sum(kwh_sold) over w as kwh_sold_ytd,
    sum(revenue_vnd) over w as revenue_ytd,
    sum(kwh_received) over w as kwh_received_ytd,
from monthly
window w as (partition by region_code, yr order by mo);

create table mart_kpi_monthly as
select
    c.period,
    c.region_code,
    c.kwh_sold,
    c.revenue_vnd,
    c.revenue_vnd / c.kwh_sold as avg_price_vnd_per_kwh,
    c.kwh_sold_ytd,
    (c.kwh_sold_ytd / p.kwh_sold_ytd - 1) * 100 as kwh_sold_ytd_yoy_pct,
    pl.kwh as plan_kwh_sold,
    c.kwh_sold_ytd / pl.kwh * 100 as plan_attainment_pct,
    c.revenue_ytd / c.kwh_sold_ytd as avg_price_ytd_vnd_per_kwh,
    c.revenue_ytd / c.kwh_sold_ytd - pl.price as avg_price_ytd_vs_plan_vnd,
    c.revenue_ytd / c.kwh_sold_ytd - p.revenue_ytd / p.kwh_sold_ytd as avg_price_ytd_yoy_vnd,
    c.kwh_received,
    (c.kwh_received - c.kwh_sold) / c.kwh_received * 100 as loss_rate_pct,
    (c.kwh_received_ytd - c.kwh_sold_ytd) / c.kwh_received_ytd * 100 as loss_rate_ytd_pct,
    (c.kwh_received_ytd - c.kwh_sold_ytd) / c.kwh_received_ytd * 100 - pl.loss as loss_rate_ytd_vs_plan_pts,
    (c.kwh_received_ytd - c.kwh_sold_ytd) / c.kwh_received_ytd * 100
        - (p.kwh_received_ytd - p.kwh_sold_ytd) / p.kwh_received_ytd * 100 as loss_rate_ytd_yoy_pts,
    c.cashless_customer_pct,
    c.cashless_amount_pct,
    (c.kwh_sold / 1000)::bigint as paying_customers,
    round(c.kwh_sold / 1000 * c.cashless_customer_pct / 100)::bigint as cashless_customers,
    pl.price as plan_avg_price_vnd_per_kwh,
    pl.loss as plan_loss_rate_pct,
from ytd as c
left join ytd as p on p.region_code = c.region_code and p.yr = c.yr - 1 and p.mo = c.mo
left join plans as pl on pl.region_code = c.region_code and pl.yr = c.yr
order by c.period, c.region_code;

update mart_kpi_monthly set
    kwh_sold_ytd = 1630000000, plan_attainment_pct = 78.1, kwh_sold_ytd_yoy_pct = 2.9,
    avg_price_ytd_vnd_per_kwh = 2285.95, avg_price_ytd_vs_plan_vnd = 8.95, avg_price_ytd_yoy_vnd = 161,
    loss_rate_ytd_pct = 3.51, loss_rate_ytd_vs_plan_pts = -1.04, loss_rate_ytd_yoy_pts = -0.16,
    cashless_customer_pct = 100, cashless_amount_pct = 100, cashless_customers = paying_customers
where period = '2025-09' and region_code = 'ALL';

create table mart_sales_monthly as
select
    m.period,
    r.region_code,
    c.customer_class,
    c.tariff_code,
    (r.scale * c.kwh + m.mo * 1000)::decimal(38, 6) as kwh_sold,
    (r.scale * c.kwh + m.mo * 1000)::decimal(38, 6) * c.price as revenue_vnd,
    c.price::double as avg_price_vnd_per_kwh,
    (r.scale * c.customers)::bigint as customers_billed,
from months as m
cross join (values ('DH', 3), ('VL', 2)) as r (region_code, scale)
cross join (
    values ('RESIDENTIAL', 'RES', 400000, 2100.5, 1000),
           ('INDUSTRIAL', 'IND_22', 500000, 1900.25, 10),
           ('COMMERCIAL', 'COM_6', 100000, 3000.0, 50)
) as c (customer_class, tariff_code, kwh, price, customers)
order by all;

create table mart_energy_balance_monthly as
with nodes as (
    select 'DT' || lpad(i::varchar, 2, '0') as node_id, 'DT' as node_type,
           case when i <= 12 then 'DH' else 'VL' end as region_code,
           1000.0 * i as kwh_in, 1000.0 * i - 10.0 * i * i as kwh_billed, 0.5 * i as estimated_share_pct
    from range(1, 25) as t (i)
    union all
    select * from (values ('F1', 'FEEDER', 'DH', 200000.0, 190000.0, 1.0),
                          ('F2', 'FEEDER', 'VL', 150000.0, 147000.0, 2.0))
)
select
    m.period,
    n.node_id,
    n.node_type,
    n.region_code,
    n.kwh_in::decimal(38, 12) as kwh_in,
    n.kwh_billed::decimal(38, 6) as kwh_billed,
    (n.kwh_in - n.kwh_billed)::decimal(38, 12) as loss_kwh,
    (n.kwh_in - n.kwh_billed) / n.kwh_in * 100 as loss_rate_pct,
    n.estimated_share_pct,
from months as m
cross join nodes as n
where m.yr = 2025
order by all;

create table mart_service_monthly as
with counts as (
    select m.period, m.yr, r.region_code, (r.base + m.mo * 10)::bigint as requests_received,
           (r.base + m.mo * 10 - 5)::bigint as requests_resolved,
           (r.base + m.mo * 10 - 8)::bigint as resolved_on_time, (20 + m.mo)::bigint as backlog_end,
           (m.mo % 3)::bigint as overdue_end, (m.mo % 2)::bigint as escalated,
    from months as m
    cross join (values ('DH', 1100), ('VL', 900)) as r (region_code, base)
),
everyone as (
    select * from counts
    union all
    select period, yr, 'ALL', sum(requests_received), sum(requests_resolved), sum(resolved_on_time),
           sum(backlog_end), sum(overdue_end), sum(escalated)
    from counts group by all
)
select
    period, region_code, requests_received, requests_resolved, resolved_on_time,
    resolved_on_time / requests_resolved * 100 as on_time_pct, backlog_end, overdue_end, escalated,
    sum(requests_received) over w as requests_received_ytd,
    sum(resolved_on_time) over w / sum(requests_resolved) over w * 100 as on_time_ytd_pct,
from everyone
window w as (partition by region_code, yr order by period)
order by period, region_code;

create table mart_service_mix_monthly as
select m.period, t.request_type, c.channel,
       (t.n * c.n + m.mo)::bigint as requests_received, (t.n * c.n)::bigint as requests_resolved,
       (t.n * c.n - 1)::bigint as resolved_on_time,
from months as m
cross join (values ('BILLING', 30), ('OUTAGE', 20), ('NEW_CONNECTION', 10)) as t (request_type, n)
cross join (values ('HOTLINE', 4), ('ZALO', 3), ('COUNTER', 2)) as c (channel, n)
order by all;

create table mart_inspections_monthly as
with counts as (
    select m.period, m.yr, r.region_code, (r.base + m.mo)::bigint as inspections,
           (r.base // 30 + m.mo % 2)::bigint as violations,
    from months as m
    cross join (values ('DH', 150), ('VL', 120)) as r (region_code, base)
),
everyone as (
    select * from counts
    union all
    select period, yr, 'ALL', sum(inspections), sum(violations) from counts group by all
)
select
    period, region_code, inspections, violations, violations / inspections * 100 as hit_rate_pct,
    (violations * 700)::decimal(38, 6) as recovered_kwh,
    (violations * 1500000)::decimal(38, 6) as recovered_vnd,
    sum(inspections) over w as inspections_ytd, sum(violations) over w as violations_ytd,
    (sum(violations) over w * 1500000)::decimal(38, 6) as recovered_vnd_ytd,
from everyone
window w as (partition by region_code, yr order by period)
order by period, region_code;

create table mart_data_quality as
select * from (values
    ('cli__2025-10-01T01:00:00.000000Z', 'ingest', 'ingest.bill_lines',
     'file_accepted(billing/bill_lines_202509.csv)', 'INGESTED: 997 of 1000 rows accepted, 3 quarantined',
     'warning', 1000::bigint, 3::bigint, false, timestamp '2025-10-01 01:00:05'),
    ('cli__2025-10-01T01:00:00.000000Z', 'raw', 'raw.bill_lines',
     'expect_column_values_to_not_be_null(bill_id)', 'every bill line has a bill_id',
     'critical', 997::bigint, 0::bigint, true, timestamp '2025-10-01 01:00:09'),
    ('cli__2025-10-01T01:00:00.000000Z', 'marts', 'marts.mart_kpi_monthly',
     'company_equals_sum_of_regions', 'company kwh_sold equals the sum of the regions',
     'critical', 63::bigint, 0::bigint, true, timestamp '2025-10-01 01:02:00'),
    ('cli__2025-10-02T01:00:00.000000Z', 'marts', 'marts.mart_kpi_monthly',
     'company_equals_sum_of_regions', 'company kwh_sold equals the sum of the regions',
     'critical', 63::bigint, 0::bigint, true, timestamp '2025-10-02 01:02:00'),
    ('cli__2025-10-02T01:00:00.000000Z', 'marts', 'marts.mart_energy_balance_monthly',
     'feeder_covers_its_dts', 'a feeder receives at least the energy of its DTs',
     'warning', 18::bigint, 2::bigint, false, timestamp '2025-10-02 01:02:01')
) as t ({quality_columns});
"""


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Every test leaves os.environ as it found it (a DAG task run in-process sets its company's home and
    time zone there, as it does in its own task process)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def make_fixture_marts(home: Path) -> Path:
    """Write the hand-made marts file under `home`/warehouse and return its path."""
    from etl.duck import connect
    from etl.lake import QUALITY_COLUMNS
    from etl.settings import Settings

    settings = Settings(home=home, threads=1, memory_limit="512MB")
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    con = connect(settings, settings.marts_path)
    con.execute(FIXTURE_MARTS_SQL.replace("{quality_columns}", ", ".join(QUALITY_COLUMNS)))
    for helper in ("months", "regional", "monthly", "plans", "ytd"):
        con.execute(f"drop table {helper}")
    con.execute("checkpoint")
    con.close()
    return settings.marts_path


@pytest.fixture(scope="session")
def fixture_marts_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home whose warehouse/marts.duckdb is the hand-made marts file (treat it as read-only)."""
    home = tmp_path_factory.mktemp("fixture-marts")
    make_fixture_marts(home)
    return home


@pytest.fixture(scope="session")
def generated_company(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A tiny generated company (300 customers, 2024-01 to 2025-09, with faults at month edges and next
    to each other) run once through etl.pipeline.run."""
    from etl.generate import generate
    from etl.pipeline import run
    from etl.settings import Settings

    home = tmp_path_factory.mktemp("generated-company")
    generate(home, customers=300, start="2024-01", end="2025-09", seed=7, fault_rate=0.01, edge_faults=True)
    settings = Settings(home=home, threads=2, memory_limit="2GB")
    report = run(settings, run_id="test__generated_company")
    assert report.published == settings.marts_path
    return settings


def published_tables(marts: Path) -> dict[str, list[tuple]]:
    """Every table of a published marts file except mart_data_quality (which records each run), rows
    sorted: what a re-run, a replay or a recovery from a crash must give again, row for row."""
    import duckdb

    con = duckdb.connect(str(marts), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
        return {
            t: sorted(con.execute(f'select * from "{t}"').fetchall(), key=repr)
            for t in tables
            if t != "mart_data_quality"
        }
    finally:
        con.close()


@pytest.fixture(scope="session")
def tiny_company(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A very small generated company with faults (30 customers, 2024-11 to 2025-02, across a new year),
    published once by a clean etl.pipeline.run: the reference for crash, re-run and concurrency tests
    (treat it as read-only; copy its landing files into a home of your own)."""
    from etl.generate import generate
    from etl.pipeline import run
    from etl.settings import Settings

    home = tmp_path_factory.mktemp("tiny-company")
    generate(home, customers=30, start="2024-11", end="2025-02", seed=5, fault_rate=0.02)
    settings = Settings(home=home, threads=2, memory_limit="2GB")
    assert run(settings, run_id="test__tiny_company").published == settings.marts_path
    return settings
