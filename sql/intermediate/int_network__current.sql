-- one row per node_id (key: node_id): the row of the newest network snapshot that lists the node

-- materialized: table
with

network as (
    select * from stg_lake__network
),

newest as (
    select * from network
    qualify row_number() over (partition by node_id order by snapshot_date desc) = 1
),

final as (
    select
        node_id,
        node_type,
        parent_id,
        region_code,
        snapshot_date,
    from newest
)

select * from final
