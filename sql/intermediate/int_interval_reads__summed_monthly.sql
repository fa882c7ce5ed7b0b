-- one row per meter, channel and local calendar month (validated/meter_monthly)
-- key: period, meter_id, channel
-- first/last_reading_start (UTC instants) and last_reading_minutes index where a channel's accepted
-- readings lie; incremental runs use them to find the readings that bound a gap reaching outside the
-- months read. recorded_kwh sums every row with a value before the multiplier (estimates included),
-- delivered_kwh the delivered readings only (actual, edited, estimated upstream).

-- materialized: view
with

validated as (
    select * from int_interval_reads__validated
),

final as (
    select
        period,
        meter_id,
        channel,
        count(*) as expected_intervals,
        count(*) filter (where quality = 'ACTUAL') as actual_intervals,
        count(*) filter (where quality = 'ESTIMATED_UPSTREAM') as upstream_estimated_intervals,
        count(*) filter (where quality = 'EDITED') as edited_intervals,
        count(*) filter (where quality = 'ESTIMATED') as estimated_intervals,
        count(*) filter (where quality = 'MISSING') as missing_intervals,
        coalesce(sum(recorded_kwh), 0)::decimal(38, 6) as recorded_kwh,
        coalesce(sum(recorded_kwh) filter (where quality <> 'ESTIMATED'), 0)::decimal(38, 6) as delivered_kwh,
        coalesce(sum(energy_kwh), 0)::decimal(38, 12) as energy_kwh,
        coalesce(sum(energy_kwh) filter (where quality = 'ESTIMATED'), 0)::decimal(38, 12)
            as estimated_energy_kwh,
        min(interval_start_utc) filter (where quality in ('ACTUAL', 'ESTIMATED_UPSTREAM', 'EDITED'))
            as first_reading_start,
        max(interval_start_utc) filter (where quality in ('ACTUAL', 'ESTIMATED_UPSTREAM', 'EDITED'))
            as last_reading_start,
        arg_max(interval_minutes, interval_start_utc) filter (
            where quality in ('ACTUAL', 'ESTIMATED_UPSTREAM', 'EDITED')
        ) as last_reading_minutes,
    from validated
    group by period, meter_id, channel
)

select * from final
