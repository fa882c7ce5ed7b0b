-- one row per meter installation, as listed by the newest meters snapshot that lists it
-- key: meter_id (within one snapshot the most recently ingested file wins, then the later line)

-- materialized: table
with

meters as (
    select * from stg_lake__meters
),

ranked as (
    select
        *,
        row_number() over (
            partition by meter_id
            order by snapshot_date desc, _ingest_seq desc, _line_no desc
        ) as recency_rank,
    from meters
),

final as (
    select * exclude (recency_rank)
    from ranked
    where recency_rank = 1
)

select * from final
