-- one row per delivered interval reading (re-deliveries kept); key: _ingest_seq, _line_no
-- recorded_kwh is before the multiplier; interval_start is local wall time (Asia/Ho_Chi_Minh)

-- materialized: view
with

source as (
    select * from raw_interval_reads
),

final as (
    select
        meter_id,
        interval_start,
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
