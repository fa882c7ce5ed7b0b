"""The corporation's roll-up: one marts file with every company's marts and the corporation's KPI rows.

`<corporation home>/warehouse/marts.duckdb` holds each mart table of the companies' published marts files,
their rows unchanged with `company_code` in front. `mart_kpi_monthly` also holds the corporation's own rows
(company_code = the corporation's code, region_code 'ALL'): the companies' whole-company figures summed
first, the ratios computed from those sums (never averaged), and year to date and year on year over the
corporation's sums as a company's mart computes them. The corporation has no plan of its own in the
exports: its plan_kwh_sold is the sum of the companies' targets when every company has one; its price and
loss-rate targets are NULL. Its kwh_received is NULL in a month where some company has none (a loss rate
over part of the corporation would mislead).

Built in `warehouse/.building/` and swapped in with `os.replace`, under the corporation's publish lock,
like a company's marts file. Companies and the corporation may live on S3 homes (etl/objectstore.py): the
companies' marts are pulled first, and the corporation's file is pushed as a stage's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from etl.companies import Company, Corporation
from etl.duck import connect
from etl.errors import PublishError
from etl.lock import data_home_lock
from etl.marts.publish import _discard, building_dir, new_building_file, replace_published
from etl.objectstore import READ_AREAS, refresh, synced
from etl.settings import Settings

log = logging.getLogger(__name__)

CORPORATE_KPI_SQL = """
with

companies as (
    select * from mart_kpi_monthly where region_code = 'ALL' and company_code <> $corporation
),

monthly as (
    select
        period,
        left(period, 4)::integer as period_year,
        right(period, 2)::integer as period_month,
        sum(kwh_sold) as kwh_sold,
        sum(revenue_vnd) as revenue_vnd,
        sum(vat_vnd) as vat_vnd,
        sum(bill_lines)::bigint as bill_lines,
        case when count(kwh_received) = $companies then sum(kwh_received) end as kwh_received,
        sum(paying_customers)::bigint as paying_customers,
        sum(cashless_customers)::bigint as cashless_customers,
        sum(paid_amount_vnd) as paid_amount_vnd,
        sum(cashless_amount_vnd) as cashless_amount_vnd,
        case when count(plan_kwh_sold) = $companies then sum(plan_kwh_sold) end as plan_kwh_sold,
    from companies
    group by period
),

year_to_date as (
    select
        *,
        sum(kwh_sold) over year_so_far as kwh_sold_ytd,
        sum(revenue_vnd) over year_so_far as revenue_ytd_vnd,
        sum(kwh_received) over year_so_far as kwh_received_ytd,
    from monthly
    window year_so_far as (partition by period_year order by period_month)
),

last_year as (
    select
        this_year.period,
        sum(earlier.kwh_sold) as kwh_sold_ytd,
        sum(earlier.revenue_vnd) as revenue_ytd_vnd,
        sum(earlier.kwh_received) as kwh_received_ytd,
    from year_to_date as this_year
    inner join year_to_date as earlier
        on this_year.period_year - 1 = earlier.period_year and this_year.period_month >= earlier.period_month
    group by this_year.period
),

ratios as (
    select
        y.*,
        y.revenue_vnd / nullif(y.kwh_sold, 0) as avg_price_vnd_per_kwh,
        y.revenue_ytd_vnd / nullif(y.kwh_sold_ytd, 0) as avg_price_ytd_vnd_per_kwh,
        (y.kwh_received - y.kwh_sold) / nullif(y.kwh_received, 0) * 100 as loss_rate_pct,
        (y.kwh_received_ytd - y.kwh_sold_ytd) / nullif(y.kwh_received_ytd, 0) * 100 as loss_rate_ytd_pct,
        y.cashless_customers / nullif(y.paying_customers, 0) * 100 as cashless_customer_pct,
        y.cashless_amount_vnd / nullif(y.paid_amount_vnd, 0) * 100 as cashless_amount_pct,
        coalesce(l.kwh_sold_ytd <> 0, false) as has_sales_history,
        coalesce(l.kwh_received_ytd <> 0, false) as has_received_history,
        l.kwh_sold_ytd as last_year_kwh_sold_ytd,
        l.revenue_ytd_vnd / nullif(l.kwh_sold_ytd, 0) as last_year_avg_price_ytd_vnd_per_kwh,
        (l.kwh_received_ytd - l.kwh_sold_ytd) / nullif(l.kwh_received_ytd, 0) * 100
            as last_year_loss_rate_ytd_pct,
    from year_to_date as y
    left join last_year as l on y.period = l.period
)

select
    $corporation as company_code,
    period,
    'ALL' as region_code,
    kwh_sold,
    revenue_vnd,
    avg_price_vnd_per_kwh,
    kwh_sold_ytd,
    case when has_sales_history then (kwh_sold_ytd / last_year_kwh_sold_ytd - 1) * 100 end
        as kwh_sold_ytd_yoy_pct,
    plan_kwh_sold,
    kwh_sold_ytd / nullif(plan_kwh_sold, 0) * 100 as plan_attainment_pct,
    avg_price_ytd_vnd_per_kwh,
    null as avg_price_ytd_vs_plan_vnd,
    case when has_sales_history then avg_price_ytd_vnd_per_kwh - last_year_avg_price_ytd_vnd_per_kwh end
        as avg_price_ytd_yoy_vnd,
    kwh_received,
    loss_rate_pct,
    loss_rate_ytd_pct,
    null as loss_rate_ytd_vs_plan_pts,
    case
        when has_sales_history and has_received_history
            then loss_rate_ytd_pct - last_year_loss_rate_ytd_pct
    end as loss_rate_ytd_yoy_pts,
    cashless_customer_pct,
    cashless_amount_pct,
    vat_vnd,
    bill_lines,
    revenue_ytd_vnd,
    kwh_received_ytd,
    null as plan_avg_price_vnd_per_kwh,
    null as plan_loss_rate_pct,
    paying_customers,
    cashless_customers,
    paid_amount_vnd,
    cashless_amount_vnd,
from ratios
order by period
"""


def corporation_marts_path(corporation: Corporation) -> Path:
    return corporation.settings().marts_path


def company_marts(company: Company) -> Path:
    """A company's published marts file; a company on an S3 home has it pulled into its working copy."""
    settings = company.settings()
    refresh(settings, READ_AREAS)
    return settings.marts_path


def _company_tables(con: duckdb.DuckDBPyConnection, alias: str) -> list[str]:
    rows = con.execute(
        "select table_name from duckdb_tables() where database_name = ? order by 1", [alias]
    ).fetchall()
    return [r[0] for r in rows]


def build_file(corporation: Corporation, settings: Settings, run_id: str) -> Path:
    """Build a new, not yet published corporation marts file. Raises PublishError naming the company
    whose marts are missing or cannot be read; nothing is left behind."""
    target = new_building_file(settings, "corporation", run_id)
    built = False
    try:
        con = connect(settings, target)
        try:
            tables: list[str] | None = None
            for number, company in enumerate(corporation.companies):
                marts = company_marts(company)
                if not marts.is_file():
                    raise PublishError(f"company {company.code} has no published marts ({marts})")
                con.execute(f"attach '{marts.as_posix()}' as c{number} (read_only)")
                found = _company_tables(con, f"c{number}")
                if tables is not None and found != tables:
                    raise PublishError(
                        f"company {company.code}'s marts ({marts}) hold tables {found}, "
                        f"{corporation.companies[0].code}'s hold {tables}"
                    )
                tables = found
            for table in tables or []:
                union = " union all by name ".join(
                    f"select '{company.code}' as company_code, * from c{number}.main.{table}"
                    for number, company in enumerate(corporation.companies)
                )
                con.execute(f"create table {table} as {union} order by all")
            con.execute(
                f"insert into mart_kpi_monthly by name {CORPORATE_KPI_SQL}",
                {"corporation": corporation.code, "companies": len(corporation.companies)},
            )
            for number in range(len(corporation.companies)):
                con.execute(f"detach c{number}")
            con.execute("checkpoint")
        finally:
            con.close()
        built = True
    except (duckdb.Error, OSError) as exc:
        raise PublishError(f"building the marts of corporation {corporation.code} failed: {exc}") from exc
    finally:
        if not built:
            _discard(target)
    return target


def publish_corporation(corporation: Corporation, run_id: str) -> Path:
    """Build the corporation's marts file from the companies' published marts and swap it in atomically.

    Raises PublishError (the published file then stays as it was) or LockError.
    """
    settings = corporation.settings()
    published = settings.marts_path
    with synced(settings), data_home_lock(settings, "publish", wait=3600):  # synced: on an S3 home
        for stale in building_dir(settings).glob("corporation_*"):  # left by a run killed mid-build
            stale.unlink()
        new_file = build_file(corporation, settings, run_id)
        try:
            replace_published(new_file, published)
        except OSError as exc:
            _discard(new_file)
            raise PublishError(f"publishing {published} failed: {exc}") from exc
    log.info("published %s (corporation %s, run %s)", published, corporation.code, run_id)
    return published
