-- one row per payment month and region (key: period, region_code), for the months of
-- getvariable('build_periods'): paying customers, those who paid only through cashless channels, and the
-- amounts (VND, VAT included).
-- Region is the customer's in the newest customers snapshot listing it ('UNKNOWN' when none does); a
-- customer belongs to one region, so the company figures are the sums of these rows.

-- materialized: table
with

payments as (
    select * from int_payments__current
),

customers as (
    select * from int_customers__current
),

-- per customer first, on the payments alone; the region is looked up once per customer and month
per_customer as (
    select
        period,
        customer_id,
        bool_and(is_cashless) as paid_only_cashless,
        count(*) as payments,
        sum(amount_vnd) as paid_amount_vnd,
        coalesce(sum(amount_vnd) filter (where is_cashless), 0) as cashless_amount_vnd,
    from payments
    group by period, customer_id
),

located as (
    select
        per_customer.*,
        coalesce(customers.region_code, 'UNKNOWN') as region_code,
    from per_customer
    left join customers on per_customer.customer_id = customers.customer_id
),

final as (
    select
        period,
        region_code,
        count(*) as paying_customers,
        count(*) filter (where paid_only_cashless) as cashless_customers,
        sum(payments)::bigint as payments,
        sum(paid_amount_vnd) as paid_amount_vnd,
        sum(cashless_amount_vnd) as cashless_amount_vnd,
    from located
    group by period, region_code
)

select * from final
