-- one row per network node and network snapshot (key: node_id, snapshot_date)
-- Within one snapshot a repeated node_id keeps the row of the most recently ingested file, then the later line.

-- materialized: view
with

source as (
    select * from raw_network
),

renamed as (
    select
        node_id,
        node_type,
        parent_id,
        region_code,
        name as node_name,
        _snapshot_date as snapshot_date,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
),

final as (
    select * from renamed
    qualify row_number() over (
        partition by node_id, snapshot_date
        order by _ingest_seq desc, _line_no desc
    ) = 1
)

select * from final
