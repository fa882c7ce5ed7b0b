-- one row per meter, register and month read: the state of the meter's register chain at the end of
-- the month (the register index, validated/register_index); key: meter_id, register, period.
-- last_*: the last deduplicated read (the one the next read is checked against); accepted_*: the last
-- accepted read (the one the next pair starts from). Built from the reads of the months read and the
-- index of the month before them, so a later run can start its chain at any month. A read is the last
-- one at the end of every month read from its own to the one before the month of the read after it
-- (int_register_reads__checked finds that read in the window it already sorts), so each read is placed in
-- its months rather than every month of every register searched for its read.

-- materialized: table
with

checked as (
    select * from int_register_reads__checked
),

previous as (
    select * from validated_register_index
),

-- every month delivered, of every meter, even when the chain is built for a range of meters
months as (
    select * from int_register_reads__months
),

-- the index's last read before the months read, followed by the first read of the months read (if any)
previous_reads as (
    select
        previous.meter_id,
        previous.register,
        previous.last_read_at as read_at,
        previous.last_index_value as index_value,
        previous.last_read_type as read_type,
        first_reads.read_at as next_read_at,
        previous.accepted_read_at,
        previous.accepted_index_value,
        previous.accepted_read_type,
    from previous
    left join checked as first_reads
        on
            previous.meter_id = first_reads.meter_id
            and previous.register = first_reads.register
            and first_reads.is_first_read
),

-- the dropped reads, each with the last accepted read before it
dropped as (
    select * from int_register_reads__dropped
),

-- every deduplicated read with the last accepted read at or before it
last_reads as (
    select
        checked.meter_id,
        checked.register,
        checked.read_at,
        checked.index_value,
        checked.read_type,
        checked.next_read_at,
        case when checked.drop_rule is null then checked.read_at else drops.accepted_read_at end as accepted_read_at,
        case
            when checked.drop_rule is null then checked.index_value else drops.accepted_index_value
        end as accepted_index_value,
        case
            when checked.drop_rule is null then checked.read_type else drops.accepted_read_type
        end as accepted_read_type,
    from checked
    left join dropped as drops
        on
            checked.meter_id = drops.meter_id
            and checked.register = drops.register
            and checked.read_at = drops.read_at
    union all
    select * from previous_reads
),

-- the months at whose end each read is the last: from its own month to the one before its next read's
placed as (
    select
        last_reads.*,
        unnest(
            generate_series(
                year(last_reads.read_at) * 12 + month(last_reads.read_at),
                coalesce(
                    year(last_reads.next_read_at) * 12 + month(last_reads.next_read_at) - 1,
                    (select max(months.month_no) from months)
                )
            )
        ) as month_no,
    from last_reads
),

final as (
    select
        placed.meter_id,
        placed.register,
        months.period,
        placed.read_at as last_read_at,
        placed.index_value as last_index_value,
        placed.read_type as last_read_type,
        placed.accepted_read_at,
        placed.accepted_index_value,
        placed.accepted_read_type,
    from placed
    inner join months on placed.month_no = months.month_no
)

select * from final
