-- one row per meter, register and read_at among the accepted register reads
-- key: meter_id, register, read_at; the most recently ingested file wins, then the later line

-- materialized: table
with

accepted as (
    select * from int_register_reads__screened
    where reject_rule is null
),

ranked as (
    select
        *,
        row_number() over (
            partition by meter_id, register, read_at
            order by _ingest_seq desc, _line_no desc
        ) as delivery_rank,
    from accepted
),

final as (
    select * exclude (delivery_rank)
    from ranked
    where delivery_rank = 1
)

select * from final
