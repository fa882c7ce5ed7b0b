-- one row per calendar day and DT node (key: period, node_id, day), for the months of
-- getvariable('build_periods'): the validated energy (kWh, x multiplier) of the node's DT meters per day,
-- ACTIVE_IMPORT minus ACTIVE_EXPORT (rooftop solar behind the DT; reactive channels count nowhere), an
-- interval counting on the day it starts. It is the load profile that spreads a register customer's
-- reading period over calendar months (int_consumption__calendar_monthly).

-- materialized: table
-- parameters: build_periods
with

interval_reads as (
    select
        meter_id,
        period,
        interval_start,
        quality,
        case when channel = 'ACTIVE_EXPORT' then -energy_kwh else energy_kwh end as energy_kwh,
    from validated_interval_reads
    where
        period in (select unnest(getvariable('build_periods')))
        and channel in ('ACTIVE_IMPORT', 'ACTIVE_EXPORT')
),

meters as (
    select * from int_meters__current
),

final as (
    select
        interval_reads.period,
        meters.node_id,
        interval_reads.interval_start::date as day,
        coalesce(sum(interval_reads.energy_kwh), 0)::decimal(38, 12) as kwh_in,
        coalesce(sum(interval_reads.energy_kwh) filter (where interval_reads.quality = 'ESTIMATED'), 0)::decimal(
            38, 12
        ) as estimated_kwh,
        count(*) filter (where interval_reads.quality = 'MISSING') as missing_intervals,
    from interval_reads
    inner join meters on interval_reads.meter_id = meters.meter_id
    where meters.role = 'DT'
    group by interval_reads.period, meters.node_id, interval_reads.interval_start::date
)

select * from final
