-- one row per meter, channel and expected interval inside the output window (validated/interval_reads)
-- key: meter_id, channel, interval_start_utc
-- Expected intervals run from a channel's first to its last accepted reading, in UTC instants, so a
-- local day of 23 or 25 hours has that many hours of intervals; a gap after a reading is counted in
-- that reading's own interval length. interval_start is the local wall time of the instant, period
-- its month. A meter no snapshot lists is UNASSIGNED: multiplier 1, and, without installation dates to
-- bound its grid, a silence of more than 31 days between two of its readings is not expected.

-- materialized: view
-- parameters: vee_from, vee_to
with

-- read in place: a materialised copy of the large table would cost more than the scans
sequenced as not materialized (
    select * from int_interval_reads__sequenced
),

readings as (
    select * from int_interval_reads__deduplicated
),

meters as (
    select
        meter_id,
        multiplier,
        role,
    from int_meters__current
),

source_files as (
    -- one landing file per ingest_seq: grouping by the number is cheaper than by the name
    select
        _ingest_seq,
        any_value(_source_file) as _source_file,
    from stg_lake__interval_reads
    group by _ingest_seq
),

winners as not materialized (
    select * from sequenced
    where is_winner and not is_bracket
),

single_gap_starts as (
    -- a key delivered once (or a bracketing reading) knows what follows it
    select
        meter_id,
        channel,
        interval_start_utc,
        interval_minutes,
        recorded_kwh,
        coalesce(upstream_quality = 'A', false) as is_anchor,
        next_start,
        next_kwh,
        coalesce(next_is_anchor, false) as next_is_anchor,
    from sequenced
    where is_last_of_key and not is_repeated_key
),

repeated_gap_starts as (
    -- a key delivered several times: its last delivery knows what follows, its winner the values
    select
        last_delivery.meter_id,
        last_delivery.channel,
        last_delivery.interval_start_utc,
        winners.interval_minutes,
        winners.recorded_kwh,
        winners.upstream_quality = 'A' as is_anchor,
        last_delivery.next_start,
        last_delivery.next_kwh,
        coalesce(last_delivery.next_is_anchor, false) as next_is_anchor,
    from sequenced as last_delivery
    inner join winners
        on
            last_delivery.meter_id = winners.meter_id
            and last_delivery.channel = winners.channel
            and last_delivery.interval_start_utc = winners.interval_start_utc
    where
        last_delivery.is_last_of_key
        and last_delivery.is_repeated_key
        and winners.is_repeated_key
),

gap_starts as (
    select * from single_gap_starts
    union all
    select * from repeated_gap_starts
),

gaps as (
    select
        meter_id,
        channel,
        interval_start_utc as gap_after,
        interval_minutes,
        recorded_kwh as kwh_before,
        next_kwh as kwh_after,
        is_anchor and next_is_anchor as has_anchors,
        datediff('minute', interval_start_utc, next_start) // interval_minutes - 1 as missing_count,
    from gap_starts
    where
        datediff('minute', interval_start_utc, next_start) >= 2 * interval_minutes
        and next_start > getvariable('vee_from')
        and interval_start_utc < getvariable('vee_to')
        and (
            meter_id in (select meters.meter_id from meters)
            or next_start <= interval_start_utc + interval 31 day
        )
),

missing as (
    select
        meter_id,
        channel,
        gap_after,
        interval_minutes,
        kwh_before,
        kwh_after,
        missing_count,
        has_anchors and missing_count <= 4 as is_interpolated,
        unnest(generate_series(1, missing_count)) as position,
    from gaps
),

placed as (
    select
        *,
        gap_after + to_minutes(interval_minutes * position) as interval_start_utc,
    from missing
),

in_window as (
    select * from placed
    where
        interval_start_utc >= getvariable('vee_from')
        and interval_start_utc < getvariable('vee_to')
),

interpolated as (
    select
        *,
        -- a + (b - a) x i / (n + 1) in millionths of a kWh, rounded half up: exact, no float
        (
            (
                2 * (
                    (kwh_before * 1000000)::hugeint * (missing_count + 1 - position)
                    + (kwh_after * 1000000)::hugeint * position
                )
                + (missing_count + 1)
            ) // (2 * (missing_count + 1))
        )::decimal(38, 0) * 0.000001 as interpolated_kwh,
    from in_window
),

like_day_sources as (
    -- only a reading the meter itself recorded is copied
    select
        meter_id,
        channel,
        interval_start_utc,
        recorded_kwh,
        _line_no,
        _ingest_seq,
    from winners
    where upstream_quality = 'A'
),

estimated as (
    select
        interpolated.meter_id,
        interpolated.channel,
        interpolated.interval_start_utc,
        interpolated.interval_minutes,
        case
            when interpolated.is_interpolated then interpolated.interpolated_kwh
            else like_day_sources.recorded_kwh
        end::decimal(18, 6) as recorded_kwh,
        case
            when interpolated.is_interpolated then 'ESTIMATED'
            when like_day_sources.meter_id is not null then 'ESTIMATED'
            else 'MISSING'
        end as quality,
        case
            when interpolated.is_interpolated then 'INTERPOLATED'
            when like_day_sources.meter_id is not null then 'LIKE_DAY'
            else 'NO_ESTIMATE'
        end as rule,
        -- a like-day value carries the lineage of the reading it copies
        like_day_sources._line_no,
        like_day_sources._ingest_seq,
    from interpolated
    left join like_day_sources
        on
            not interpolated.is_interpolated
            and interpolated.meter_id = like_day_sources.meter_id
            and interpolated.channel = like_day_sources.channel
            and interpolated.interval_start_utc - interval 7 day = like_day_sources.interval_start_utc
),

read_rows as (
    select
        meter_id,
        channel,
        interval_start_utc,
        interval_minutes,
        recorded_kwh,
        quality,
        rule,
        _line_no,
        _ingest_seq,
    from readings
    where
        interval_start_utc >= getvariable('vee_from')
        and interval_start_utc < getvariable('vee_to')
),

unioned as (
    select * from read_rows
    union all
    select * from estimated
),

joined as (
    select
        unioned.*,
        coalesce(meters.multiplier, 1) as multiplier,
        coalesce(meters.role, 'UNASSIGNED') as role,
        source_files._source_file,
    from unioned
    left join meters
        on unioned.meter_id = meters.meter_id
    left join source_files
        on unioned._ingest_seq = source_files._ingest_seq
),

final as (
    select
        meter_id,
        channel,
        local_time(interval_start_utc) as interval_start,
        interval_start_utc,
        strftime(local_time(interval_start_utc), '%Y-%m') as period,
        interval_minutes,
        recorded_kwh,
        multiplier,
        (recorded_kwh::decimal(38, 6) * multiplier::decimal(38, 6))::decimal(38, 12) as energy_kwh,
        quality,
        rule,
        role,
        _source_file,
        _line_no,
        _ingest_seq,
    from joined
)

select * from final
