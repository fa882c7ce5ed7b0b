-- one row per billing period, region, customer class and tariff code of the line
-- (key: period, region_code, customer_class, tariff_code), for the billing
-- periods of getvariable('build_periods').
-- Region and class are the customer's in the newest customers snapshot listing it; 'UNKNOWN' when no
-- snapshot lists the customer. kWh and VND are exact sums of the lines that count (adjustments signed).

-- materialized: table
with

bills as (
    select * from int_bill_lines__by_bill
),

customers as (
    select * from int_customers__current
),

attributed as (
    select
        bills.period,
        bills.customer_id,
        bills.bill_id,
        bills.tariff_code,
        bills.kwh,
        bills.amount_vnd,
        bills.vat_vnd,
        bills.adjustment_kwh,
        bills.adjustment_vnd,
        bills.bill_lines,
        coalesce(customers.region_code, 'UNKNOWN') as region_code,
        coalesce(customers.customer_class, 'UNKNOWN') as customer_class,
    from bills
    left join customers on bills.customer_id = customers.customer_id
),

final as (
    select
        period,
        region_code,
        customer_class,
        tariff_code,
        sum(kwh) as kwh_sold,
        sum(amount_vnd) as revenue_vnd,
        sum(vat_vnd) as vat_vnd,
        coalesce(sum(adjustment_kwh), 0) as adjustment_kwh,
        coalesce(sum(adjustment_vnd), 0) as adjustment_vnd,
        count(distinct customer_id) as customers_billed,
        count(distinct bill_id) as bills,
        sum(bill_lines)::bigint as bill_lines,
    from attributed
    group by period, region_code, customer_class, tariff_code
)

select * from final
