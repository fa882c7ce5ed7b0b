-- one row per delivered interval reading, with the VEE rule that rejects it (NULL: accepted)
-- key: _ingest_seq, _line_no. A meter no snapshot lists is UNASSIGNED: multiplier 1, no max_kw, no
-- installation dates. max_kw bounds the active channels only (reactive readings are kvarh).

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
        coalesce(meters.multiplier, 1) as multiplier,
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
            when interval_start < installed_on then 'OUTSIDE_INSTALLATION'
            -- removed_on is the last day the meter was in place
            when interval_start >= removed_on + 1 then 'OUTSIDE_INSTALLATION'
            -- kwh > max_kw x minutes / 60, multiplied out so the comparison stays exact
            when
                channel in ('ACTIVE_IMPORT', 'ACTIVE_EXPORT')
                and recorded_kwh::decimal(38, 6) * 60 > max_kw::decimal(38, 6) * interval_minutes
                then 'ABOVE_MAX_KW'
        end as reject_rule,
    from joined
)

select * from final
