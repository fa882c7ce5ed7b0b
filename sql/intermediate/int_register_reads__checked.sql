-- one row per deduplicated register read, judged against the read before it
-- key: meter_id, register, read_at
-- An index below the one before is a rollover when index + 10^register_digits - previous is
-- plausible: at most max_kw x hours elapsed, or (max_kw not set) at most half the register's range.
-- Otherwise the read is rejected (INDEX_DOWN). A METER_IN read starts a new sequence.
with

reads as (
    select * from int_register_reads__deduplicated
),

sequenced as (
    select
        *,
        lag(index_value) over by_time as previous_index,
        lag(read_at) over by_time as previous_read_at,
        lag(read_type) over by_time as previous_read_type,
    from reads
    window by_time as (partition by meter_id, register order by read_at)
),

compared as (
    select
        *,
        previous_index is not null
        and previous_read_type <> 'METER_OUT'
        and read_type <> 'METER_IN' as continues_sequence,
        ('1' || repeat('0', register_digits::integer))::decimal(38, 6) as register_range_kwh,
    from sequenced
),

judged as (
    select
        *,
        index_value::decimal(38, 6) + register_range_kwh - previous_index as rollover_kwh,
    from compared
),

final as (
    select
        *,
        case
            when not continues_sequence then null
            when index_value >= previous_index then null
            when
                max_kw is not null
                and rollover_kwh * 3600 <= max_kw::decimal(38, 6) * datediff('second', previous_read_at, read_at)
                then null
            when max_kw is null and rollover_kwh * 2 <= register_range_kwh then null
            else 'INDEX_DOWN'
        end as drop_rule,
    from judged
)

select * from final
