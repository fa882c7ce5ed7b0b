-- one row per delivered register read (re-deliveries kept); key: _ingest_seq, _line_no
-- index_value is the cumulative index before the multiplier; read_at is local wall time

-- materialized: view
with

source as (
    select * from raw_register_reads
),

final as (
    select
        meter_id,
        read_at,
        register,
        index_value,
        read_type,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
)

select * from final
