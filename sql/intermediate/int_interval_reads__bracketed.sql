-- one row per meter, channel and side: the nearest accepted reading before and after the read window
-- (UTC instants), from the reading index; key: meter_id, channel, side ('before' or 'after').
-- Such a reading only bounds a gap (its start, its length): a gap that reaches past the window's
-- margins is longer than 4 intervals, so needs no values. When a month's last reading before the
-- window is not its last reading overall, that month has readings inside the window's margin, and
-- the bracket only bounds a gap that ends before the output window.

-- materialized: table
-- parameters: vee_read_from, vee_read_to
with

reading_index as (
    select * from validated_reading_index
),

nearest_before as (
    select
        meter_id,
        channel,
        'before' as side,
        max(last_reading_start) as interval_start_utc,
        arg_max(last_reading_minutes, last_reading_start) as interval_minutes,
    from reading_index
    where last_reading_start < getvariable('vee_read_from')
    group by meter_id, channel
),

nearest_after as (
    select
        meter_id,
        channel,
        'after' as side,
        min(first_reading_start) as interval_start_utc,
        null::bigint as interval_minutes,
    from reading_index
    where first_reading_start >= getvariable('vee_read_to')
    group by meter_id, channel
),

final as (
    select * from nearest_before
    union all
    select * from nearest_after
)

select * from final
