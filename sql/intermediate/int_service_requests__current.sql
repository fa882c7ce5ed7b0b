-- one row per request_id: its current state (key: request_id). CONTRACT.md §9: each operations file is a
-- delivery of new or changed rows, and the row of the most recently ingested file is the current state,
-- then the later line.

-- materialized: table
with

requests as (
    select * from stg_lake__service_requests
),

ranked as (
    select
        *,
        row_number() over (partition by request_id order by _ingest_seq desc, _line_no desc) as delivery_rank,
    from requests
),

final as (
    select * exclude (delivery_rank),
    from ranked
    where delivery_rank = 1
)

select * from final
