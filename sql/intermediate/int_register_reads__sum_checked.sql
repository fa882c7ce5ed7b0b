-- one row per meter and TOTAL register pair where the meter also has validated intervals
-- (validated/sum_check); key: meter_id, read_to. A report only: nothing is corrected.
-- Interval energy counts the intervals lying wholly between the two reads; a difference within
-- 1 kWh or 1% of the register's consumption is within tolerance.

-- materialized: table
with

consumption as (
    select * from validated_register_consumption
    where register = 'TOTAL' and consumption_kwh is not null
),

intervals as (
    -- the register counts energy delivered to the premises: the import channel
    select * from validated_interval_reads
    where channel = 'ACTIVE_IMPORT'
),

compared as (
    select
        consumption.period,
        consumption.meter_id,
        consumption.read_from,
        consumption.read_to,
        consumption.consumption_kwh as register_energy_kwh,
        coalesce(sum(intervals.energy_kwh), 0)::decimal(38, 12) as interval_energy_kwh,
        count(*) as intervals_expected,
        count(*) filter (where intervals.quality = 'MISSING') as intervals_missing,
        count(*) filter (where intervals.quality in ('ESTIMATED', 'ESTIMATED_UPSTREAM'))
            as intervals_estimated,
    from consumption
    inner join intervals
        on
            consumption.meter_id = intervals.meter_id
            and consumption.read_from <= intervals.interval_start
            and consumption.read_to >= intervals.interval_start + to_minutes(intervals.interval_minutes)
    group by all
),

final as (
    select
        period,
        meter_id,
        'TOTAL' as register,
        read_from,
        read_to,
        register_energy_kwh,
        interval_energy_kwh,
        (interval_energy_kwh - register_energy_kwh)::decimal(38, 12) as difference_kwh,
        greatest(1, register_energy_kwh * 0.01)::decimal(38, 12) as tolerance_kwh,
        abs(interval_energy_kwh - register_energy_kwh) <= greatest(1, register_energy_kwh * 0.01)
            as is_within_tolerance,
        intervals_expected,
        intervals_missing,
        intervals_estimated,
    from compared
)

select * from final
