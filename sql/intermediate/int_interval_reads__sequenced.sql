-- one row per accepted delivered reading inside the read window, plus the bracketing readings
-- outside it, in time order per meter and channel; key: meter_id, channel, interval_start_utc,
-- _ingest_seq, _line_no. Time is the UTC instant: on the repeated hour of a daylight saving change
-- the two local hours are two instants, and the skipped hour is no gap.
-- One window pass (per meter, by time, the winning delivery first) both deduplicates and finds
-- the gaps, so the large table is sorted once; wide columns (file name, multiplier) are joined
-- back at the end rather than sorted.

-- materialized: table
-- parameters: vee_read_from, vee_read_to
with

accepted as (
    select * from int_interval_reads__screened
    where
        reject_rule is null
        and interval_start_utc >= getvariable('vee_read_from')
        and interval_start_utc < getvariable('vee_read_to')
),

brackets as (
    select * from int_interval_reads__bracketed
),

points as (
    select
        meter_id,
        channel,
        interval_start_utc,
        interval_minutes,
        recorded_kwh,
        upstream_quality,
        _line_no,
        _ingest_seq,
        false as is_bracket,
    from accepted
    union all
    select
        meter_id,
        channel,
        interval_start_utc,
        interval_minutes,
        null as recorded_kwh,
        null as upstream_quality,
        null as _line_no,
        null as _ingest_seq,
        true as is_bracket,
    from brackets
),

final as (
    select
        *,
        -- the most recently ingested delivery of a key sorts first: it is the one kept
        coalesce(lag(interval_start_utc) over by_time <> interval_start_utc, true) as is_winner,
        coalesce(lead(interval_start_utc) over by_time <> interval_start_utc, true) as is_last_of_key,
        coalesce(
            lag(interval_start_utc) over by_time = interval_start_utc
            or lead(interval_start_utc) over by_time = interval_start_utc,
            false
        ) as is_repeated_key,
        lead(interval_start_utc) over by_time as next_start,
        lead(recorded_kwh) over by_time as next_kwh,
        lead(upstream_quality) over by_time = 'A' as next_is_anchor,
    from points
    window by_time as (
        partition by meter_id, channel
        order by interval_start_utc asc, _ingest_seq desc nulls last, _line_no desc nulls last
    )
)

select * from final
