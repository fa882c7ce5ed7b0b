-- one row per billing period, region, customer class and tariff code
-- (key: period, region_code, customer_class, tariff_code). Region and class are the customer's in the
-- newest customers snapshot that lists it ('UNKNOWN' when none does); the tariff is the bill line's.
-- There is no 'ALL' row: the company is the sum of every row of a period. Unrounded; kWh and VND exact.

-- materialized: table
with

sales as (
    select * from aggregates_int_sales__monthly
),

final as (
    select
        -- period: billing period, 'YYYY-MM' (text)
        period,
        -- region_code: the customer's district power unit, 'UNKNOWN' when no customers snapshot lists it (text)
        region_code,
        -- customer_class: the customer's class, 'UNKNOWN' when no customers snapshot lists it (text)
        customer_class,
        -- tariff_code: the bill line's tariff (text)
        tariff_code,
        -- kwh_sold: kWh of the bill lines, latest export versions, adjustments signed (kWh)
        kwh_sold,
        -- revenue_vnd: amount of the same lines, excluding VAT (VND)
        revenue_vnd,
        -- avg_price_vnd_per_kwh: revenue_vnd / kwh_sold; NULL when kwh_sold is 0 (VND/kWh)
        revenue_vnd / nullif(kwh_sold, 0) as avg_price_vnd_per_kwh,
        -- customers_billed: distinct customers with a line in the row (count)
        customers_billed,
        -- vat_vnd: VAT of the same lines (VND)
        vat_vnd,
        -- adjustment_kwh: the part of kwh_sold from ADJUSTMENT lines (kWh)
        adjustment_kwh,
        -- adjustment_vnd: the part of revenue_vnd from ADJUSTMENT lines (VND)
        adjustment_vnd,
        -- bills: distinct bill_id with a line in the row (count)
        bills,
        -- bill_lines: bill lines counted (count)
        bill_lines,
    from sales
    order by period, region_code, customer_class, tariff_code
)

select * from final
