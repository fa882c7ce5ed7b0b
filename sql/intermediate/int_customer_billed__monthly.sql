-- one row per billing period and customer with bill lines (key: period, customer_id): the kWh billed on
-- the period's regular and final bills (adjustments apart), latest export versions. It is compared with
-- what the customer's meter measured over the reading periods that end in the month.

-- materialized: table
with

bill_lines as (
    select * from int_bill_lines__current
),

final as (
    select
        period,
        customer_id,
        coalesce(sum(kwh) filter (where bill_type <> 'ADJUSTMENT'), 0) as kwh_billed,
        coalesce(sum(kwh) filter (where bill_type = 'ADJUSTMENT'), 0) as kwh_adjusted,
    from bill_lines
    group by period, customer_id
)

select * from final
