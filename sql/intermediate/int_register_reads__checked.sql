-- one row per deduplicated register read, judged against the read before it
-- key: meter_id, register, read_at
-- An index below the one before is a rollover when index + 10^register_digits - previous is
-- plausible: at most max_kw x hours elapsed, or (max_kw not set) at most half the register's range.
-- Otherwise the read is rejected (INDEX_DOWN). A METER_IN read starts a new sequence. Reads only the
-- months being rebuilt (and the ones after them); validated_register_index carries the read before.

-- materialized: table
with

reads as (
    select * from int_register_reads__deduplicated
),

-- the register index of the month before the months read (empty when the chain starts at the first read)
previous as (
    select * from validated_register_index
),

-- the first read of the months read is compared with the last read before them, from the index
sequenced as (
    select
        reads.*,
        case
            when lag(reads.read_at) over by_time is null then previous.last_index_value
            else lag(reads.index_value) over by_time
        end as previous_index,
        coalesce(lag(reads.read_at) over by_time, previous.last_read_at) as previous_read_at,
        case
            when lag(reads.read_at) over by_time is null then previous.last_read_type
            else lag(reads.read_type) over by_time
        end as previous_read_type,
        -- for the register index: the read after this one (NULL: the newest) and whether none is before it
        lead(reads.read_at) over by_time as next_read_at,
        lag(reads.read_at) over by_time is null as is_first_read,
    from reads
    left join previous
        on
            reads.meter_id = previous.meter_id
            and reads.register = previous.register
    window by_time as (partition by reads.meter_id, reads.register order by reads.read_at)
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
