-- one row per meter, channel and interval among the accepted readings inside the read window
-- key: meter_id, channel, interval_start_utc; the most recently ingested file wins, then the later line

-- materialized: view
with

-- read in place: a materialised copy of the large table would cost more than the scans
sequenced as not materialized (
    select * from int_interval_reads__sequenced
    where not is_bracket
),

repeated_keys as (
    select
        meter_id,
        channel,
        interval_start_utc,
        -- deliveries that disagree on the reading; exact repeats leave these equal
        min(recorded_kwh) <> max(recorded_kwh)
        or min(interval_minutes) <> max(interval_minutes)
        or min(upstream_quality) <> max(upstream_quality) as is_corrected,
        min(_ingest_seq) <> max(_ingest_seq) as has_several_files,
    from sequenced
    where is_repeated_key
    group by meter_id, channel, interval_start_utc
),

single_winners as (
    select
        *,
        false as is_corrected,
        false as has_several_files,
    from sequenced
    where is_winner and not is_repeated_key
),

repeated_winners as (
    select
        sequenced.*,
        repeated_keys.is_corrected,
        repeated_keys.has_several_files,
    from sequenced
    inner join repeated_keys
        on
            sequenced.meter_id = repeated_keys.meter_id
            and sequenced.channel = repeated_keys.channel
            and sequenced.interval_start_utc = repeated_keys.interval_start_utc
    where sequenced.is_winner and sequenced.is_repeated_key
),

winners as (
    select * from single_winners
    union all
    select * from repeated_winners
),

final as (
    select
        meter_id,
        channel,
        interval_start_utc,
        interval_minutes,
        recorded_kwh,
        upstream_quality,
        case
            when upstream_quality = 'E' then 'ESTIMATED_UPSTREAM'
            when is_corrected then 'EDITED'
            else 'ACTUAL'
        end as quality,
        case
            when is_corrected and has_several_files then 'CORRECTED_BY_LATER_FILE'
            when is_corrected then 'CORRECTED_BY_LATER_LINE'
            when upstream_quality = 'E' then 'UPSTREAM_ESTIMATE'
            else 'AS_READ'
        end as rule,
        -- only a reading the meter itself recorded may anchor an estimate
        upstream_quality = 'A' as is_anchor,
        _line_no,
        _ingest_seq,
    from winners
)

select * from final
