-- one row per billing period and customer with bill lines (key: period, customer_id): the kWh billed on
-- the period's regular and final bills (adjustments apart), latest export versions. It is compared with
-- what the customer's meter measured over the reading periods that end in the month.

-- materialized: table
with

bills as (
    select * from int_bill_lines__by_bill
),

final as (
    select
        period,
        customer_id,
        coalesce(sum(regular_kwh), 0) as kwh_billed,
        coalesce(sum(adjustment_kwh), 0) as kwh_adjusted,
    from bills
    group by period, customer_id
)

select * from final
