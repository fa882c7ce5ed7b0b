-- one row per period and region_code of the operations calendar (key: period, region_code; the company
-- row is 'ALL'): mart_inspections_monthly's figures (CONTRACT.md §9), from the current state of every
-- inspection, in the month of inspected_on. Counts and sums are 0 where nothing happened; the hit rate is
-- NULL without inspections.

-- materialized: table
with

calendar as (
    select * from int_operations__calendar
),

inspections as (
    select * from int_inspections__current
),

scoped as (
    select
        region_code as scope,
        inspected_on,
        result,
        recovered_kwh,
        recovered_vnd,
    from inspections
),

everyone as (
    select * from scoped
    union all
    select * replace ('ALL' as scope),
    from scoped
),

monthly as (
    select
        scope,
        strftime(inspected_on, '%Y-%m') as period,
        count(*) as inspections,
        count(*) filter (where result = 'VIOLATION') as violations,
        sum(recovered_kwh) filter (where result = 'VIOLATION') as recovered_kwh,
        sum(recovered_vnd) filter (where result = 'VIOLATION') as recovered_vnd,
    from everyone
    group by all
),

filled as (
    select
        calendar.period,
        calendar.region_code,
        left(calendar.period, 4) as year,
        coalesce(monthly.inspections, 0)::bigint as inspections,
        coalesce(monthly.violations, 0)::bigint as violations,
        coalesce(monthly.recovered_kwh, 0)::decimal(38, 6) as recovered_kwh,
        coalesce(monthly.recovered_vnd, 0)::decimal(38, 6) as recovered_vnd,
    from calendar
    left join monthly
        on calendar.period = monthly.period and calendar.region_code = monthly.scope
),

final as (
    select
        period,
        region_code,
        inspections,
        violations,
        violations / nullif(inspections, 0) * 100 as hit_rate_pct,
        recovered_kwh,
        recovered_vnd,
        (sum(inspections) over year_to_date)::bigint as inspections_ytd,
        (sum(violations) over year_to_date)::bigint as violations_ytd,
        (sum(recovered_vnd) over year_to_date)::decimal(38, 6) as recovered_vnd_ytd,
    from filled
    window year_to_date as (partition by region_code, year order by period rows unbounded preceding)
)

select * from final
