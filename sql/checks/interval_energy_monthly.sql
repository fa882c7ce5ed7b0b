-- one row per meter per local calendar month in scope (key: meter_id, period): the energy of the month's
-- validated intervals summed, to compare with validated meter_monthly.
with

intervals as (
    select * from validated_interval_reads
),

final as (
    select
        meter_id,
        period,
        sum(energy_kwh) as energy_kwh,
    from intervals
    group by meter_id, period
)

select * from final
