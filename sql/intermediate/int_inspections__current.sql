-- one row per inspection_id: its current state (key: inspection_id). CONTRACT.md §9: the row of the most
-- recently ingested file is the current state, then the later line.

-- materialized: table
with

inspections as (
    select * from stg_lake__inspections
),

ranked as (
    select
        *,
        row_number() over (partition by inspection_id order by _ingest_seq desc, _line_no desc) as delivery_rank,
    from inspections
),

final as (
    select * exclude (delivery_rank),
    from ranked
    where delivery_rank = 1
)

select * from final
