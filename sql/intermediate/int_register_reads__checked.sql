-- one row per deduplicated register read, judged against the read before it
-- key: meter_id, register, read_at
-- Among the accepted deliveries of a meter, register and read_at, the most recently ingested file wins,
-- then the later line. An index below the one before is a rollover when index + 10^register_digits -
-- previous is plausible: at most max_kw x hours elapsed, or (max_kw not set) at most half the register's
-- range. Otherwise the read is rejected (INDEX_DOWN). A METER_IN read starts a new sequence. Reads only
-- the months being rebuilt (and the ones after them); validated_register_index carries the read before.
-- One window over every delivery both deduplicates and finds the read before and after each read.

-- materialized: table
with

deliveries as (
    select * from int_register_reads__screened
    where reject_rule is null
),

-- the register index of the month before the months read (empty when the chain starts at the first read)
previous as (
    select * from validated_register_index
),

-- every delivery in time order, the winning delivery of a read_at last among its own
ordered as (
    select
        deliveries.*,
        lag(deliveries.read_at) over by_time as before_at,
        lag(deliveries.index_value) over by_time as before_index,
        lag(deliveries.read_type) over by_time as before_type,
        lead(deliveries.read_at) over by_time as next_read_at,
    from deliveries
    window by_time as (
        partition by deliveries.meter_id, deliveries.register
        order by deliveries.read_at, deliveries._ingest_seq, deliveries._line_no
    )
),

-- the first delivery of a read_at delivered more than once: the delivery before it is the read before
-- (re-deliveries are rare; for the others the delivery before the winner is)
repeated_firsts as (
    select
        meter_id,
        register,
        read_at,
        before_at,
        before_index,
        before_type,
    from ordered
    where before_at is distinct from read_at and next_read_at = read_at
),

-- the winners, each with the read before it (NULL: none in the months read) and the read after it (the
-- delivery after a winner is the next read_at's first)
reads as (
    select
        ordered.* exclude (ordered.before_at, ordered.before_index, ordered.before_type),
        case when ordered.before_at = ordered.read_at then firsts.before_at else ordered.before_at end as before_at,
        case
            when ordered.before_at = ordered.read_at then firsts.before_index else ordered.before_index
        end as before_index,
        case
            when ordered.before_at = ordered.read_at then firsts.before_type else ordered.before_type
        end as before_type,
    from ordered
    left join repeated_firsts as firsts
        on
            ordered.before_at = ordered.read_at
            and ordered.meter_id = firsts.meter_id
            and ordered.register = firsts.register
            and ordered.read_at = firsts.read_at
    where ordered.next_read_at is distinct from ordered.read_at
),

-- the first read of the months read is compared with the last read before them, from the index
sequenced as (
    select
        reads.* exclude (reads.before_at, reads.before_index, reads.before_type),
        case
            when reads.before_at is null then previous.last_index_value else reads.before_index
        end as previous_index,
        coalesce(reads.before_at, previous.last_read_at) as previous_read_at,
        case
            when reads.before_at is null then previous.last_read_type else reads.before_type
        end as previous_read_type,
        -- for the register index and the pairs: whether no read is before it in the months read
        reads.before_at is null as is_first_read,
    from reads
    left join previous
        on
            reads.meter_id = previous.meter_id
            and reads.register = previous.register
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
