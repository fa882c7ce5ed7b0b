-- one row per accepted raw service request row, every delivery of a request included
-- (lineage key: _ingest_seq, _line_no; contract key request_id, the current state in
-- int_service_requests__current). Timestamps are local wall time of the company.

-- materialized: view
with

source as (
    select * from raw_service_requests
),

final as (
    select
        request_id,
        customer_id,
        region_code,
        request_type,
        channel,
        received_at,
        due_at,
        status,
        closed_at,
        escalated,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
)

select * from final
