-- one row per meter, channel and local month in scope (key: meter_id, channel, period): the energy of the month's
-- validated intervals summed, to compare with validated meter_monthly.
with

intervals as (
    select * from validated_interval_reads
),

final as (
    select
        meter_id,
        channel,
        period,
        sum(energy_kwh) as energy_kwh,
    from intervals
    group by meter_id, channel, period
)

select * from final
