-- one row per customer and customers snapshot (key: customer_id, snapshot_date)
-- Within one snapshot a repeated customer_id keeps the row of the most recently ingested file, then the
-- later line. Names, addresses and phones stay in the raw layer: nothing downstream may carry them.

-- materialized: view
with

source as (
    select * from raw_customers
),

renamed as (
    select
        customer_id,
        customer_class,
        tariff_code,
        region_code,
        dt_id,
        connected_on,
        disconnected_on,
        _snapshot_date as snapshot_date,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
),

final as (
    select * from renamed
    qualify row_number() over (
        partition by customer_id, snapshot_date
        order by _ingest_seq desc, _line_no desc
    ) = 1
)

select * from final
