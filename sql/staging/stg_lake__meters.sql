-- one row per delivered meters row and snapshot (raw keeps every snapshot)
-- key: _snapshot_date, meter_id (a meter repeated within a snapshot: see int_meters__current)

-- materialized: view
with

source as (
    select * from raw_meters
),

final as (
    select
        meter_id,
        role,
        customer_id,
        node_id,
        reading_mode,
        multiplier,
        max_kw,
        register_digits,
        installed_on,
        removed_on,
        _snapshot_date as snapshot_date,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
)

select * from final
