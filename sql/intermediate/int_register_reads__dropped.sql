-- one row per deduplicated register read that int_register_reads__checked drops (INDEX_DOWN), with the
-- last accepted read before it (NULL: none) and the read after it; key: meter_id, register, read_at.
-- A read after a dropped one pairs with this accepted read (int_register_reads__measured), and a month
-- that ends on a dropped read keeps it in the register index. Drops are rare, so only the registers
-- with one are searched for their accepted reads, the index of the month before the months read
-- included.

-- materialized: table
with

dropped as (
    select
        meter_id,
        register,
        read_at,
        next_read_at,
    from int_register_reads__checked
    where drop_rule is not null
),

previous as (
    select * from validated_register_index
),

accepted_reads as (
    select
        checked.meter_id,
        checked.register,
        checked.read_at,
        checked.index_value,
        checked.read_type,
    from int_register_reads__checked as checked
    semi join dropped on checked.meter_id = dropped.meter_id and checked.register = dropped.register
    where checked.drop_rule is null
    union all
    select
        previous.meter_id,
        previous.register,
        previous.accepted_read_at,
        previous.accepted_index_value,
        previous.accepted_read_type,
    from previous
    semi join dropped on previous.meter_id = dropped.meter_id and previous.register = dropped.register
    where previous.accepted_read_at is not null
),

final as (
    select
        dropped.meter_id,
        dropped.register,
        dropped.read_at,
        dropped.next_read_at,
        accepted_reads.read_at as accepted_read_at,
        accepted_reads.index_value as accepted_index_value,
        accepted_reads.read_type as accepted_read_type,
    from dropped
    asof left join accepted_reads
        on
            dropped.meter_id = accepted_reads.meter_id
            and dropped.register = accepted_reads.register
            and dropped.read_at > accepted_reads.read_at
)

select * from final
