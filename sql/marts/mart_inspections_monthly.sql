-- one row per period and region (key: period, region_code; the company row is region_code 'ALL'):
-- on-site inspections of customers' metering and use of electricity, the violations they found and the
-- energy and money back-billed, in the month of inspected_on. Every month from the first to the last
-- month with an operations timestamp has a row for the company and for every region with operations
-- rows. An inspection counts in the region of the unit that inspected, by its current state (the row of
-- the most recently ingested file). Counts and sums are 0 where nothing happened; only ratios are NULL.

-- materialized: table
with

inspections as (
    select * from aggregates_int_inspections__monthly
),

final as (
    select
        -- period: calendar month of inspected_on, 'YYYY-MM' (text)
        period,
        -- region_code: the unit that inspected, 'ALL' for the company (text)
        region_code,
        -- inspections: inspections in the period (count)
        inspections,
        -- violations: of those, the ones with result VIOLATION (count)
        violations,
        -- hit_rate_pct: violations / inspections x 100; NULL without inspections (%)
        hit_rate_pct,
        -- recovered_kwh: energy back-billed for the period's violations (kWh)
        recovered_kwh,
        -- recovered_vnd: amount back-billed for the period's violations, excluding VAT (VND)
        recovered_vnd,
        -- inspections_ytd: inspections summed from January to the period (count)
        inspections_ytd,
        -- violations_ytd: violations summed from January to the period (count)
        violations_ytd,
        -- recovered_vnd_ytd: recovered_vnd summed from January to the period (VND)
        recovered_vnd_ytd,
    from inspections
    order by period, region_code
)

select * from final
