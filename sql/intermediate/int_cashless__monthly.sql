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

per_customer as (
    select
        payments.period,
        payments.customer_id,
        coalesce(customers.region_code, 'UNKNOWN') as region_code,
        bool_and(payments.is_cashless) as paid_only_cashless,
        count(*) as payments,
        sum(payments.amount_vnd) as paid_amount_vnd,
        coalesce(sum(payments.amount_vnd) filter (where payments.is_cashless), 0) as cashless_amount_vnd,
    from payments
    left join customers on payments.customer_id = customers.customer_id
    group by payments.period, payments.customer_id, coalesce(customers.region_code, 'UNKNOWN')
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
    from per_customer
    group by period, region_code
)

select * from final
