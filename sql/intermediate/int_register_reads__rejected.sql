-- one row per delivered register read that VEE quarantines (validated/register_rejects)
-- key: _ingest_seq, _line_no

-- materialized: table
with

screened as (
    select * from int_register_reads__screened
    where reject_rule is not null
),

checked as (
    select * from int_register_reads__checked
    where drop_rule is not null
),

measured as (
    select * from int_register_reads__measured
),

unknown_or_outside as (
    select
        meter_id,
        read_at,
        register,
        index_value,
        read_type,
        reject_rule as rule,
        case reject_rule
            when 'UNKNOWN_METER' then format('meter {} is in no meters snapshot', meter_id)
            else format(
                'read_at {} is outside the installation of meter {} ({} to {})',
                read_at, meter_id, installed_on, coalesce(removed_on::varchar, 'now')
            )
        end as reason,
        _source_file,
        _line_no,
        _ingest_seq,
    from screened
),

index_down as (
    select
        meter_id,
        read_at,
        register,
        index_value,
        read_type,
        drop_rule as rule,
        format(
            'index {} is below the previous index {} of {} and a rollover at 10^{} would mean {} kWh',
            index_value, previous_index, previous_read_at, register_digits, rollover_kwh
        ) as reason,
        _source_file,
        _line_no,
        _ingest_seq,
    from checked
),

unresolved as (
    select
        meter_id,
        read_to as read_at,
        register,
        index_to as index_value,
        read_type_to as read_type,
        rule,
        format(
            'index {} is below the index {} of {}, the last accepted read, and a rollover is not plausible',
            index_to, index_from, read_from
        ) as reason,
        _source_file,
        _line_no,
        _ingest_seq,
    from measured
    where rule = 'UNRESOLVED_DROP'
),

unioned as (
    select * from unknown_or_outside
    union all
    select * from index_down
    union all
    select * from unresolved
),

final as (
    select
        meter_id,
        read_at,
        strftime(read_at, '%Y-%m') as period,
        register,
        index_value,
        read_type,
        rule,
        reason,
        _source_file,
        _line_no,
        _ingest_seq,
    from unioned
)

select * from final
