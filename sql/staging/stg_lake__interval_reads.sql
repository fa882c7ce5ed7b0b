-- one row per delivered interval reading (re-deliveries kept); key: _ingest_seq, _line_no
-- recorded_kwh is before the multiplier; interval_start is local wall time of the company's time zone,
-- interval_start_utc its UTC instant (computed from the local time for rows that lack it); an empty
-- channel is ACTIVE_IMPORT

-- materialized: view
with

source as (
    select * from raw_interval_reads
),

final as (
    select
        meter_id,
        interval_start,
        coalesce(interval_start_utc, utc_instant(interval_start)) as interval_start_utc,
        coalesce(channel, 'ACTIVE_IMPORT') as channel,
        interval_minutes,
        kwh as recorded_kwh,
        -- the contract reads an empty quality as actual
        coalesce(quality, 'A') as upstream_quality,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
)

select * from final
