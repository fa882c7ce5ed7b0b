-- one row per local calendar month whose validated interval rows the newly delivered readings can change
-- key: period. Reads raw_interval_reads over the new files only, and the reading index of the
-- months already validated. A reading at t changes the intervals between the reading before it and
-- the reading after it (the gap it splits or the grid it extends), so the months from the first
-- interval after the one before to the last interval before the one after, and, as a like-day
-- source, the month of t + 7 days when that is not past the meter's last reading. Per meter and
-- channel; times are UTC instants, months the local months of those instants. An UNASSIGNED meter's
-- gaps end 31 days after a reading (int_interval_reads__validated), so only readings within 32 days
-- bound them.

-- materialized: table
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
        channel,
        strftime(interval_start, '%Y-%m') as period,
        min(interval_start_utc) as first_new,
        max(interval_start_utc) as last_new,
        max(max(interval_start_utc)) over (partition by meter_id, channel) as meter_last_new,
        bool_and(is_known_meter) as is_known_meter,
    from delivered
    group by meter_id, channel, strftime(interval_start, '%Y-%m')
),

previous_months as (
    select
        delivered_months.meter_id,
        delivered_months.channel,
        delivered_months.period,
        max(reading_index.period) as previous_period,
        -- in an earlier month the reading before is that month's last; the gap starts one interval on
        arg_max(
            reading_index.last_reading_start + to_minutes(reading_index.last_reading_minutes),
            reading_index.period
        ) as gap_start,
    from delivered_months
    inner join reading_index
        on
            delivered_months.meter_id = reading_index.meter_id
            and delivered_months.channel = reading_index.channel
            and delivered_months.first_new > reading_index.first_reading_start
            and (
                delivered_months.is_known_meter
                or reading_index.last_reading_start >= delivered_months.first_new - interval 32 day
            )
    group by all
),

last_readings as (
    select
        meter_id,
        channel,
        max(last_reading_start) as last_reading_start,
    from reading_index
    group by meter_id, channel
),

next_months as (
    select
        delivered_months.meter_id,
        delivered_months.channel,
        delivered_months.period,
        min(reading_index.period) as next_period,
        -- in a later month the reading after is that month's first; the gap ends just before it
        arg_min(reading_index.first_reading_start, reading_index.period) as gap_end,
    from delivered_months
    inner join reading_index
        on
            delivered_months.meter_id = reading_index.meter_id
            and delivered_months.channel = reading_index.channel
            and delivered_months.last_new < reading_index.last_reading_start
            and (
                delivered_months.is_known_meter
                or reading_index.first_reading_start <= delivered_months.last_new + interval 32 day
            )
    group by all
),

spans as (
    select
        strptime(
            case
                when previous_months.previous_period < delivered_months.period
                    then least(strftime(local_time(previous_months.gap_start), '%Y-%m'), delivered_months.period)
                else delivered_months.period
            end,
            '%Y-%m'
        ) as span_from,
        strptime(
            greatest(
                case
                    when next_months.next_period > delivered_months.period
                        then strftime(local_time(next_months.gap_end - interval 1 minute), '%Y-%m')
                    else delivered_months.period
                end,
                strftime(
                    local_time(
                        least(
                            delivered_months.last_new + interval 7 day,
                            greatest(delivered_months.meter_last_new, last_readings.last_reading_start)
                        )
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
            and delivered_months.channel = previous_months.channel
            and delivered_months.period = previous_months.period
    left join next_months
        on
            delivered_months.meter_id = next_months.meter_id
            and delivered_months.channel = next_months.channel
            and delivered_months.period = next_months.period
    left join last_readings
        on
            delivered_months.meter_id = last_readings.meter_id
            and delivered_months.channel = last_readings.channel
),

distinct_spans as (
    select distinct
        span_from,
        span_to,
    from spans
),

final as (
    select distinct strftime(unnest(generate_series(span_from, span_to, interval 1 month)), '%Y-%m') as period
    from distinct_spans
)

select * from final
