-- one row per delivered register read, with the VEE rule that rejects it (NULL: accepted)
-- key: _ingest_seq, _line_no

-- materialized: view
with

reads as (
    select * from stg_lake__register_reads
),

meters as (
    select
        meter_id,
        customer_id,
        multiplier,
        max_kw,
        register_digits,
        installed_on,
        removed_on,
    from int_meters__current
),

joined as (
    select
        reads.*,
        meters.meter_id is not null as is_known_meter,
        meters.customer_id,
        meters.multiplier,
        meters.max_kw,
        meters.register_digits,
        meters.installed_on,
        meters.removed_on,
    from reads
    left join meters
        on reads.meter_id = meters.meter_id
),

final as (
    select
        *,
        case
            when not is_known_meter then 'UNKNOWN_METER'
            when read_at < installed_on then 'OUTSIDE_INSTALLATION'
            -- a meter is read on the day it is removed, up to midnight
            when read_at >= removed_on + 1 then 'OUTSIDE_INSTALLATION'
        end as reject_rule,
    from joined
)

select * from final
