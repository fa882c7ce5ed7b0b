-- one row per meter and local calendar month (validated/meter_monthly)
-- key: period, meter_id
-- first/last_reading_start and last_reading_minutes index where a meter's accepted readings lie;
-- incremental runs use them to find the readings that bound a gap reaching outside the months read.

-- materialized: view
with

validated as (
    select * from int_interval_reads__validated
),

final as (
    select
        period,
        meter_id,
        count(*) as expected_intervals,
        count(*) filter (where quality = 'ACTUAL') as actual_intervals,
        count(*) filter (where quality = 'ESTIMATED_UPSTREAM') as upstream_estimated_intervals,
        count(*) filter (where quality = 'EDITED') as edited_intervals,
        count(*) filter (where quality = 'ESTIMATED') as estimated_intervals,
        count(*) filter (where quality = 'MISSING') as missing_intervals,
        coalesce(sum(recorded_kwh), 0)::decimal(38, 6) as recorded_kwh,
        coalesce(sum(energy_kwh), 0)::decimal(38, 12) as energy_kwh,
        coalesce(sum(energy_kwh) filter (where quality = 'ESTIMATED'), 0)::decimal(38, 12)
            as estimated_energy_kwh,
        min(interval_start) filter (where quality in ('ACTUAL', 'ESTIMATED_UPSTREAM', 'EDITED'))
            as first_reading_start,
        max(interval_start) filter (where quality in ('ACTUAL', 'ESTIMATED_UPSTREAM', 'EDITED'))
            as last_reading_start,
        arg_max(interval_minutes, interval_start) filter (
            where quality in ('ACTUAL', 'ESTIMATED_UPSTREAM', 'EDITED')
        ) as last_reading_minutes,
    from validated
    group by period, meter_id
)

select * from final
