-- one row per meter, register and pair of consecutive accepted reads, with the rule that measures it
-- key: meter_id, register, read_to. No pair crosses a meter change: a METER_OUT read closes a
-- sequence and a METER_IN read opens one. UNRESOLVED_DROP pairs (an index still below the one
-- before, after a rejected read) go to register_rejects, the others to register_consumption.

-- materialized: table
with

reads as (
    select * from int_register_reads__checked
    where drop_rule is null
),

-- the register index of the month before the months read (empty when the chain starts at the first read)
previous as (
    select * from validated_register_index
),

-- the dropped reads, each with the last accepted read before it
dropped as (
    select * from int_register_reads__dropped
),

-- each accepted read pairs with the last accepted read before it: the read before it
-- (int_register_reads__checked's window), the index's for the first read of the months read, the one
-- before a dropped read for the read after that (drops are rare: no second window over every read)
sequenced as (
    select
        reads.*,
        case
            when reads.is_first_read then previous.accepted_index_value
            when dropped.read_at is not null then dropped.accepted_index_value
            else reads.previous_index
        end as index_from,
        case
            when reads.is_first_read then previous.accepted_read_at
            when dropped.read_at is not null then dropped.accepted_read_at
            else reads.previous_read_at
        end as read_from,
        case
            when reads.is_first_read then previous.accepted_read_type
            when dropped.read_at is not null then dropped.accepted_read_type
            else reads.previous_read_type
        end as read_type_from,
    from reads
    left join previous
        on
            reads.is_first_read
            and reads.meter_id = previous.meter_id
            and reads.register = previous.register
    left join dropped
        on
            reads.meter_id = dropped.meter_id
            and reads.register = dropped.register
            and reads.read_at = dropped.next_read_at
),

pairs as (
    select
        *,
        ('1' || repeat('0', register_digits::integer))::decimal(38, 6) as register_range_kwh,
    from sequenced
    where
        read_from is not null
        and read_type_from <> 'METER_OUT'
        and read_type <> 'METER_IN'
),

measured as (
    select
        *,
        index_value::decimal(38, 6) + register_range_kwh - index_from as rollover_kwh,
        index_value >= index_from as is_up,
    from pairs
),

classified as (
    select
        *,
        case
            when is_up then 'INDEX_DIFFERENCE'
            when
                max_kw is not null
                and rollover_kwh * 3600 <= max_kw::decimal(38, 6) * datediff('second', read_from, read_at)
                then 'ROLLOVER'
            when max_kw is null and rollover_kwh * 2 <= register_range_kwh then 'ROLLOVER'
            -- only after a rejected read: reported, never guessed
            else 'UNRESOLVED_DROP'
        end as rule,
    from measured
),

final as (
    select
        meter_id,
        customer_id,
        register,
        read_from,
        read_at as read_to,
        strftime(read_at, '%Y-%m') as period,
        (
            case rule
                when 'INDEX_DIFFERENCE' then index_value::decimal(38, 6) - index_from
                when 'ROLLOVER' then rollover_kwh
            end
        )::decimal(38, 6) as recorded_kwh,
        multiplier,
        (
            (
                case rule
                    when 'INDEX_DIFFERENCE' then index_value::decimal(38, 6) - index_from
                    when 'ROLLOVER' then rollover_kwh
                end
            )::decimal(38, 6)
            * multiplier::decimal(38, 6)
        )::decimal(38, 12) as consumption_kwh,
        rule,
        index_from,
        index_value as index_to,
        read_type_from,
        read_type as read_type_to,
        _source_file,
        _line_no,
        _ingest_seq,
    from classified
)

select * from final
