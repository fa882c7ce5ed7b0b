-- one row per billing period, region, customer class and tariff code of the line
-- (key: period, region_code, customer_class, tariff_code), for the billing
-- periods of getvariable('build_periods').
-- Region and class are the customer's in the newest customers snapshot listing it; 'UNKNOWN' when no
-- snapshot lists the customer. kWh and VND are exact sums of the lines that count (adjustments signed).

-- materialized: table
with

bill_lines as (
    select * from int_bill_lines__current
),

customers as (
    select * from int_customers__current
),

attributed as (
    select
        bill_lines.period,
        bill_lines.customer_id,
        bill_lines.bill_id,
        bill_lines.bill_type,
        bill_lines.tariff_code,
        bill_lines.kwh,
        bill_lines.amount_vnd,
        bill_lines.vat_vnd,
        coalesce(customers.region_code, 'UNKNOWN') as region_code,
        coalesce(customers.customer_class, 'UNKNOWN') as customer_class,
    from bill_lines
    left join customers on bill_lines.customer_id = customers.customer_id
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
        coalesce(sum(kwh) filter (where bill_type = 'ADJUSTMENT'), 0) as adjustment_kwh,
        coalesce(sum(amount_vnd) filter (where bill_type = 'ADJUSTMENT'), 0) as adjustment_vnd,
        count(distinct customer_id) as customers_billed,
        count(distinct bill_id) as bills,
        count(*) as bill_lines,
    from attributed
    group by period, region_code, customer_class, tariff_code
)

select * from final
