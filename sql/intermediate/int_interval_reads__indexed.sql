-- one row per meter, channel and local calendar month that holds accepted readings
-- key: meter_id, channel, period; the same index columns as validated/meter_monthly, straight from raw
-- (first/last_reading_start are UTC instants)

-- materialized: view
with

accepted as (
    select * from int_interval_reads__screened
    where reject_rule is null
),

by_month as (
    select
        meter_id,
        channel,
        date_trunc('month', interval_start) as month_start,
        min(interval_start_utc) as first_reading_start,
        max(interval_start_utc) as last_reading_start,
        arg_max(interval_minutes, (interval_start_utc, _ingest_seq, _line_no)) as last_reading_minutes,
    from accepted
    group by meter_id, channel, date_trunc('month', interval_start)
),

final as (
    select
        meter_id,
        channel,
        strftime(month_start, '%Y-%m') as period,
        first_reading_start,
        last_reading_start,
        last_reading_minutes,
    from by_month
)

select * from final
