-- one row per local calendar month whose validated interval rows the newly delivered readings can change
-- key: period. Reads raw_interval_reads over the new files only, and the reading index of the
-- months already validated. A reading at t changes the months from the reading before it to the
-- reading after it (the gap it splits or the grid it extends) and, as a like-day source, t + 7 days
-- when that is not past the meter's last reading.
with

delivered as (
    select * from int_interval_reads__screened
),

reading_index as (
    select * from validated_reading_index
),

delivered_months as (
    select
        meter_id,
        strftime(interval_start, '%Y-%m') as period,
        min(interval_start) as first_new,
        max(interval_start) as last_new,
        max(max(interval_start)) over (partition by meter_id) as meter_last_new,
    from delivered
    group by meter_id, strftime(interval_start, '%Y-%m')
),

previous_months as (
    select
        delivered_months.meter_id,
        delivered_months.period,
        max(reading_index.period) as previous_period,
    from delivered_months
    inner join reading_index
        on
            delivered_months.meter_id = reading_index.meter_id
            and delivered_months.first_new > reading_index.first_reading_start
    group by all
),

last_readings as (
    select
        meter_id,
        max(last_reading_start) as last_reading_start,
    from reading_index
    group by meter_id
),

next_months as (
    select
        delivered_months.meter_id,
        delivered_months.period,
        min(reading_index.period) as next_period,
    from delivered_months
    inner join reading_index
        on
            delivered_months.meter_id = reading_index.meter_id
            and delivered_months.last_new < reading_index.last_reading_start
    group by all
),

spans as (
    select
        strptime(coalesce(previous_months.previous_period, delivered_months.period), '%Y-%m')
            as span_from,
        strptime(
            greatest(
                coalesce(next_months.next_period, delivered_months.period),
                strftime(
                    least(
                        delivered_months.last_new + interval 7 day,
                        greatest(delivered_months.meter_last_new, last_readings.last_reading_start)
                    ),
                    '%Y-%m'
                )
            ),
            '%Y-%m'
        ) as span_to,
    from delivered_months
    left join previous_months
        on
            delivered_months.meter_id = previous_months.meter_id
            and delivered_months.period = previous_months.period
    left join next_months
        on
            delivered_months.meter_id = next_months.meter_id
            and delivered_months.period = next_months.period
    left join last_readings
        on delivered_months.meter_id = last_readings.meter_id
),

distinct_spans as (
    select distinct
        span_from,
        span_to,
    from spans
),

final as (
    select distinct
        strftime(unnest(generate_series(span_from, span_to, interval 1 month)), '%Y-%m') as period,
    from distinct_spans
)

select * from final
