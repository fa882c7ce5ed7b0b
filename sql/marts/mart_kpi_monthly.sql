-- one row per period and region (key: period, region_code); region_code 'ALL' is the whole company.
-- Every period with a bill line, received energy or a payment has a company row, and every region with any
-- of those in the period a row of its own ('UNKNOWN' gathers customers no customers snapshot lists).
-- Billed and paid figures are 0 in a row that has none (the exports are complete statements); received
-- energy is NULL where no meter reported (a missing reading is never a zero). Year to date = sums from
-- January; year-on-year figures compare with the previous year's sums over the same months and are NULL
-- when those hold no kWh sold (for loss rates also no kWh received). Plan figures are NULL without a plan
-- for the year and region. Figures are unrounded; kWh and VND are exact decimals, ratios DOUBLE, percentages 0-100.

-- materialized: table
with

sales as (
    select * from aggregates_int_sales__monthly
),

received as (
    select * from aggregates_int_energy_received__monthly
),

cashless as (
    select * from aggregates_int_cashless__monthly
),

plans as (
    select * from aggregates_int_plans__current
),

calendar as (
    select * from aggregates_int_consumption__calendar_monthly
),

consumed as (
    -- the calendar figures count when the reads of at most 1 % of the customers stop short of the
    -- month's end (docs/loss_hunting.md)
    select
        period,
        coalesce(region_code, 'ALL') as region_code,
        case
            when count(*) filter (where not is_covered) <= 0.01 * count(*) then sum(kwh_calendar)
        end as kwh_consumed_calendar,
    from calendar
    group by grouping sets ((period, region_code), (period))
),

region_sales as (
    select
        period,
        region_code,
        sum(kwh_sold) as kwh_sold,
        sum(revenue_vnd) as revenue_vnd,
        sum(vat_vnd) as vat_vnd,
        sum(bill_lines)::bigint as bill_lines,
    from sales
    group by period, region_code
),

all_sales as (
    select * from region_sales
    union all
    select
        period,
        'ALL' as region_code,
        sum(kwh_sold) as kwh_sold,
        sum(revenue_vnd) as revenue_vnd,
        sum(vat_vnd) as vat_vnd,
        sum(bill_lines)::bigint as bill_lines,
    from region_sales
    group by period
),

region_cashless as (
    select
        period,
        region_code,
        paying_customers,
        cashless_customers,
        paid_amount_vnd,
        cashless_amount_vnd,
    from cashless
),

all_cashless as (
    select * from region_cashless
    union all
    select
        period,
        'ALL' as region_code,
        sum(paying_customers)::bigint as paying_customers,
        sum(cashless_customers)::bigint as cashless_customers,
        sum(paid_amount_vnd) as paid_amount_vnd,
        sum(cashless_amount_vnd) as cashless_amount_vnd,
    from region_cashless
    group by period
),

row_keys as (
    select
        period,
        region_code,
    from all_sales
    union
    select
        period,
        region_code,
    from received
    union
    select
        period,
        region_code,
    from all_cashless
    union
    select
        period,
        'ALL' as region_code,
    from received
),

monthly as (
    select
        row_keys.period,
        row_keys.region_code,
        left(row_keys.period, 4)::integer as period_year,
        right(row_keys.period, 2)::integer as period_month,
        coalesce(all_sales.kwh_sold, 0) as kwh_sold,
        coalesce(all_sales.revenue_vnd, 0) as revenue_vnd,
        coalesce(all_sales.vat_vnd, 0) as vat_vnd,
        coalesce(all_sales.bill_lines, 0) as bill_lines,
        received.kwh_received,
        coalesce(all_cashless.paying_customers, 0) as paying_customers,
        coalesce(all_cashless.cashless_customers, 0) as cashless_customers,
        coalesce(all_cashless.paid_amount_vnd, 0) as paid_amount_vnd,
        coalesce(all_cashless.cashless_amount_vnd, 0) as cashless_amount_vnd,
    from row_keys
    left join all_sales
        on row_keys.period = all_sales.period and row_keys.region_code = all_sales.region_code
    left join received
        on row_keys.period = received.period and row_keys.region_code = received.region_code
    left join all_cashless
        on row_keys.period = all_cashless.period and row_keys.region_code = all_cashless.region_code
),

year_to_date as (
    select
        *,
        sum(kwh_sold) over year_so_far as kwh_sold_ytd,
        sum(revenue_vnd) over year_so_far as revenue_ytd_vnd,
        sum(kwh_received) over year_so_far as kwh_received_ytd,
    from monthly
    window year_so_far as (partition by region_code, period_year order by period_month)
),

ratios as (
    select
        *,
        revenue_vnd / nullif(kwh_sold, 0) as avg_price_vnd_per_kwh,
        revenue_ytd_vnd / nullif(kwh_sold_ytd, 0) as avg_price_ytd_vnd_per_kwh,
        (kwh_received - kwh_sold) / nullif(kwh_received, 0) * 100 as loss_rate_pct,
        (kwh_received_ytd - kwh_sold_ytd) / nullif(kwh_received_ytd, 0) * 100 as loss_rate_ytd_pct,
        cashless_customers / nullif(paying_customers, 0) * 100 as cashless_customer_pct,
        cashless_amount_vnd / nullif(paid_amount_vnd, 0) * 100 as cashless_amount_pct,
    from year_to_date
),

last_year as (
    -- the previous year's sums over the same months (January to the period's month), whichever months
    -- of them have data
    select
        this_year.period,
        this_year.region_code,
        sum(earlier.kwh_sold) as kwh_sold_ytd,
        sum(earlier.revenue_vnd) as revenue_ytd_vnd,
        sum(earlier.kwh_received) as kwh_received_ytd,
    from ratios as this_year
    inner join ratios as earlier
        on
            this_year.region_code = earlier.region_code
            and this_year.period_year - 1 = earlier.period_year
            and this_year.period_month >= earlier.period_month
    group by this_year.period, this_year.region_code
),

with_history as (
    select
        this_year.*,
        -- year on year needs kWh sold (for loss rates also kWh received) in the previous year's same months
        coalesce(last_year.kwh_sold_ytd <> 0, false) as has_sales_history,
        coalesce(last_year.kwh_received_ytd <> 0, false) as has_received_history,
        last_year.kwh_sold_ytd as last_year_kwh_sold_ytd,
        last_year.revenue_ytd_vnd / nullif(last_year.kwh_sold_ytd, 0) as last_year_avg_price_ytd_vnd_per_kwh,
        (last_year.kwh_received_ytd - last_year.kwh_sold_ytd)
        / nullif(last_year.kwh_received_ytd, 0)
        * 100 as last_year_loss_rate_ytd_pct,
    from ratios as this_year
    left join last_year
        on this_year.period = last_year.period and this_year.region_code = last_year.region_code
),

plan_targets as (
    select
        plan_year,
        region_code,
        max(target) filter (where kpi = 'KWH_SOLD') as plan_kwh_sold,
        max(target) filter (where kpi = 'AVG_PRICE') as plan_avg_price_vnd_per_kwh,
        max(target) filter (where kpi = 'LOSS_RATE') as plan_loss_rate_pct,
    from plans
    group by plan_year, region_code
),

final as (
    select
        -- period: billing and calendar month, 'YYYY-MM' (text)
        with_history.period,
        -- region_code: district power unit of the customers and feeders; 'ALL' = whole company (text)
        with_history.region_code,
        -- kwh_sold: kWh of the bill lines of the billing period, latest export versions, adjustments signed (kWh)
        with_history.kwh_sold,
        -- revenue_vnd: amount of the same bill lines, excluding VAT (VND)
        with_history.revenue_vnd,
        -- avg_price_vnd_per_kwh: revenue_vnd / kwh_sold; NULL when kwh_sold is 0 (VND/kWh)
        with_history.avg_price_vnd_per_kwh,
        -- kwh_sold_ytd: kwh_sold summed from January of the year to the period (kWh)
        with_history.kwh_sold_ytd,
        -- kwh_sold_ytd_yoy_pct: (kwh_sold_ytd / the same months a year earlier - 1) x 100; NULL without history (%)
        case
            when with_history.has_sales_history
                then (with_history.kwh_sold_ytd / with_history.last_year_kwh_sold_ytd - 1) * 100
        end as kwh_sold_ytd_yoy_pct,
        -- plan_kwh_sold: the year's KWH_SOLD target of the region; NULL without a plan (kWh)
        plan_targets.plan_kwh_sold,
        -- plan_attainment_pct: kwh_sold_ytd / plan_kwh_sold x 100; NULL without a plan (%)
        with_history.kwh_sold_ytd / nullif(plan_targets.plan_kwh_sold, 0) * 100 as plan_attainment_pct,
        -- avg_price_ytd_vnd_per_kwh: revenue from January / kwh_sold_ytd (VND/kWh)
        with_history.avg_price_ytd_vnd_per_kwh,
        -- avg_price_ytd_vs_plan_vnd: avg_price_ytd_vnd_per_kwh minus the AVG_PRICE target; NULL without plan (VND/kWh)
        with_history.avg_price_ytd_vnd_per_kwh - plan_targets.plan_avg_price_vnd_per_kwh as avg_price_ytd_vs_plan_vnd,
        -- avg_price_ytd_yoy_vnd: avg_price_ytd_vnd_per_kwh minus the same one year earlier; no history: NULL (VND/kWh)
        case
            when with_history.has_sales_history
                then with_history.avg_price_ytd_vnd_per_kwh - with_history.last_year_avg_price_ytd_vnd_per_kwh
        end as avg_price_ytd_yoy_vnd,
        -- kwh_received: validated energy x multiplier of BOUNDARY (company) or region FEEDER meters; NULL if none (kWh)
        with_history.kwh_received,
        -- loss_rate_pct: (kwh_received - kwh_sold) / kwh_received x 100 (%)
        with_history.loss_rate_pct,
        -- loss_rate_ytd_pct: (kwh_received_ytd - kwh_sold_ytd) / kwh_received_ytd x 100 (%)
        with_history.loss_rate_ytd_pct,
        -- loss_rate_ytd_vs_plan_pts: loss_rate_ytd_pct minus the LOSS_RATE target; NULL without plan (points)
        with_history.loss_rate_ytd_pct - plan_targets.plan_loss_rate_pct as loss_rate_ytd_vs_plan_pts,
        -- loss_rate_ytd_yoy_pts: loss_rate_ytd_pct minus the same one year earlier; NULL without history (points)
        case
            when with_history.has_sales_history and with_history.has_received_history
                then with_history.loss_rate_ytd_pct - with_history.last_year_loss_rate_ytd_pct
        end as loss_rate_ytd_yoy_pts,
        -- cashless_customer_pct: share of the month's paying customers who paid only cashless; NULL if nobody paid (%)
        with_history.cashless_customer_pct,
        -- cashless_amount_pct: cashless payment amount / all payment amount in the month; NULL if nothing paid (%)
        with_history.cashless_amount_pct,
        -- vat_vnd: VAT of the bill lines counted in kwh_sold (VND)
        with_history.vat_vnd,
        -- bill_lines: number of bill lines counted in kwh_sold (count)
        with_history.bill_lines,
        -- revenue_ytd_vnd: revenue_vnd summed from January of the year to the period (VND)
        with_history.revenue_ytd_vnd,
        -- kwh_received_ytd: kwh_received summed from January of the year to the period (kWh)
        with_history.kwh_received_ytd,
        -- plan_avg_price_vnd_per_kwh: the year's AVG_PRICE target of the region; NULL without a plan (VND/kWh)
        plan_targets.plan_avg_price_vnd_per_kwh,
        -- plan_loss_rate_pct: the year's LOSS_RATE target of the region; NULL without a plan (%)
        plan_targets.plan_loss_rate_pct,
        -- paying_customers: customers with a payment whose paid_at falls in the month (count)
        with_history.paying_customers,
        -- cashless_customers: paying customers whose payments in the month were all cashless (count)
        with_history.cashless_customers,
        -- paid_amount_vnd: payments whose paid_at falls in the month, VAT included (VND)
        with_history.paid_amount_vnd,
        -- cashless_amount_vnd: the cashless part of paid_amount_vnd (VND)
        with_history.cashless_amount_vnd,
        -- kwh_consumed_calendar: the customers' calendar-month consumption; NULL if >1 % not covered (kWh)
        consumed.kwh_consumed_calendar,
        -- loss_rate_calendar_pct: (kwh_received - kwh_consumed_calendar) / kwh_received x 100; NULL without either (%)
        (with_history.kwh_received - consumed.kwh_consumed_calendar)
        / nullif(with_history.kwh_received, 0)
        * 100 as loss_rate_calendar_pct,
    from with_history
    left join plan_targets
        on
            with_history.period_year = plan_targets.plan_year
            and with_history.region_code = plan_targets.region_code
    left join consumed
        on with_history.period = consumed.period and with_history.region_code = consumed.region_code
    order by with_history.period, with_history.region_code
)

select * from final
