-- one row per meter, register and month read: the state of the meter's register chain at the end of
-- the month (the register index, validated/register_index); key: meter_id, register, period.
-- last_*: the last deduplicated read (the one the next read is checked against); accepted_*: the last
-- accepted read (the one the next pair starts from). Built from the reads of the months read and the
-- index of the month before them, so a later run can start its chain at any month.

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

register_keys as (
    select distinct
        meter_id,
        register,
    from checked
    union
    select
        meter_id,
        register,
    from previous
),

grid as (
    select
        register_keys.meter_id,
        register_keys.register,
        months.period,
        months.month_end,
    from register_keys
    cross join months
),

deduplicated_reads as (
    select
        meter_id,
        register,
        read_at,
        index_value,
        read_type,
    from checked
    union all
    select
        meter_id,
        register,
        last_read_at,
        last_index_value,
        last_read_type,
    from previous
),

accepted_reads as (
    select
        meter_id,
        register,
        read_at,
        index_value,
        read_type,
    from checked
    where drop_rule is null
    union all
    select
        meter_id,
        register,
        accepted_read_at,
        accepted_index_value,
        accepted_read_type,
    from previous
    where accepted_read_at is not null
),

with_last as (
    select
        grid.meter_id,
        grid.register,
        grid.period,
        grid.month_end,
        deduplicated_reads.read_at as last_read_at,
        deduplicated_reads.index_value as last_index_value,
        deduplicated_reads.read_type as last_read_type,
    from grid
    asof inner join deduplicated_reads
        on
            grid.meter_id = deduplicated_reads.meter_id
            and grid.register = deduplicated_reads.register
            and grid.month_end > deduplicated_reads.read_at
),

final as (
    select
        with_last.meter_id,
        with_last.register,
        with_last.period,
        with_last.last_read_at,
        with_last.last_index_value,
        with_last.last_read_type,
        accepted_reads.read_at as accepted_read_at,
        accepted_reads.index_value as accepted_index_value,
        accepted_reads.read_type as accepted_read_type,
    from with_last
    asof left join accepted_reads
        on
            with_last.meter_id = accepted_reads.meter_id
            and with_last.register = accepted_reads.register
            and with_last.month_end > accepted_reads.read_at
)

select * from final
