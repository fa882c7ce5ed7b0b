-- one row per delivered interval reading, with the VEE rule that rejects it (NULL: accepted)
-- key: _ingest_seq, _line_no

-- materialized: view
with

readings as (
    select * from stg_lake__interval_reads
),

meters as (
    select
        meter_id,
        multiplier,
        max_kw,
        installed_on,
        removed_on,
    from int_meters__current
),

joined as (
    select
        readings.*,
        meters.meter_id is not null as is_known_meter,
        meters.multiplier,
        meters.max_kw,
        meters.installed_on,
        meters.removed_on,
    from readings
    left join meters
        on readings.meter_id = meters.meter_id
),

final as (
    select
        *,
        case
            when not is_known_meter then 'UNKNOWN_METER'
            when interval_start < installed_on then 'OUTSIDE_INSTALLATION'
            -- removed_on is the last day the meter was in place
            when interval_start >= removed_on + 1 then 'OUTSIDE_INSTALLATION'
            -- kwh > max_kw x minutes / 60, multiplied out so the comparison stays exact
            when recorded_kwh::decimal(38, 6) * 60 > max_kw::decimal(38, 6) * interval_minutes
                then 'ABOVE_MAX_KW'
        end as reject_rule,
    from joined
)

select * from final
