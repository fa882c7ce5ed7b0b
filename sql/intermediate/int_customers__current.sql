-- one row per customer_id (key: customer_id): the row of the newest customers snapshot that lists the customer
-- A customer's bills and payments count in this region_code, whatever region it had when billed.

-- materialized: table
with

customers as (
    select * from stg_lake__customers
),

newest as (
    select * from customers
    qualify row_number() over (partition by customer_id order by snapshot_date desc) = 1
),

final as (
    select
        customer_id,
        customer_class,
        tariff_code,
        region_code,
        dt_id,
        connected_on,
        disconnected_on,
        snapshot_date,
    from newest
)

select * from final
