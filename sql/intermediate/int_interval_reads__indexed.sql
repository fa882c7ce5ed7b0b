-- one row per meter and local calendar month that holds accepted readings
-- key: meter_id, period; the same index columns as validated/meter_monthly, straight from raw
with

accepted as (
    select * from int_interval_reads__screened
    where reject_rule is null
),

final as (
    select
        meter_id,
        strftime(interval_start, '%Y-%m') as period,
        min(interval_start) as first_reading_start,
        max(interval_start) as last_reading_start,
        arg_max(interval_minutes, (interval_start, _ingest_seq, _line_no)) as last_reading_minutes,
    from accepted
    group by all
)

select * from final
