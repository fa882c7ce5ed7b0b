-- one row per period and region_code of the operations marts (key: period, region_code): every month
-- from the first to the last month with any operations timestamp (received_at, closed_at, inspected_on),
-- for the company ('ALL') and for every region with a current operations row (CONTRACT.md §9).

-- materialized: table
with

requests as (
    select * from int_service_requests__current
),

inspections as (
    select * from int_inspections__current
),

stamps as (
    select
        received_at::date as day,
        region_code,
    from requests
    union all
    select
        closed_at::date as day,
        region_code,
    from requests
    where closed_at is not null
    union all
    select
        inspected_on as day,
        region_code,
    from inspections
),

bounds as (
    select
        date_trunc('month', min(day)) as first_month,
        date_trunc('month', max(day)) as last_month,
    from stamps
),

months as (
    select
        strftime(
            unnest(generate_series(bounds.first_month, bounds.last_month, interval 1 month)), '%Y-%m'
        ) as period,
    from bounds
),

regions as (
    select distinct region_code, from stamps
    union all
    select 'ALL' as region_code
),

final as (
    select
        months.period,
        regions.region_code,
    from months
    cross join regions
)

select * from final
