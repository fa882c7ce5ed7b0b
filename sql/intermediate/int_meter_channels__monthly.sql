-- one row per calendar month, meter and channel (key: period, meter_id, channel), for the months of
-- getvariable('build_periods'): validated/meter_monthly with the meter's role in the newest meters
-- snapshot listing it (UNASSIGNED when none does) and the unit of the channel.

-- materialized: table
-- parameters: build_periods
with

meter_monthly as (
    select * from validated_meter_monthly
    where period in (select unnest(getvariable('build_periods')))
),

meters as (
    select * from int_meters__current
),

final as (
    select
        meter_monthly.period,
        meter_monthly.meter_id,
        meter_monthly.channel,
        coalesce(meters.role, 'UNASSIGNED') as role,
        case when meter_monthly.channel like 'REACTIVE%' then 'kvarh' else 'kWh' end as unit,
        meter_monthly.expected_intervals,
        -- an edited reading is a delivered actual one that a later delivery corrected
        (meter_monthly.actual_intervals + meter_monthly.edited_intervals)::bigint as actual_intervals,
        meter_monthly.upstream_estimated_intervals,
        meter_monthly.estimated_intervals,
        meter_monthly.missing_intervals,
        meter_monthly.delivered_kwh as recorded_qty,
        meter_monthly.energy_kwh as validated_qty,
        meter_monthly.edited_intervals,
        meter_monthly.estimated_energy_kwh as estimated_qty,
    from meter_monthly
    left join meters on meter_monthly.meter_id = meters.meter_id
)

select * from final
