-- one row per billing period, customer, bill and tariff code of the bill lines that count in a period of
-- getvariable('build_periods') (key: period, customer_id, bill_id, tariff_code): exact kWh, VND and line
-- counts of int_bill_lines__current, read once per pass into the grain every billing aggregate can sum.
-- regular_kwh leaves out ADJUSTMENT lines; adjustment_kwh and adjustment_vnd are those lines alone (NULL
-- when the row has none, as a filtered sum of no lines is).

-- materialized: table
with

bill_lines as (
    select * from int_bill_lines__current
),

final as (
    select
        period,
        customer_id,
        bill_id,
        tariff_code,
        sum(kwh) as kwh,
        sum(amount_vnd) as amount_vnd,
        sum(vat_vnd) as vat_vnd,
        sum(kwh) filter (where bill_type <> 'ADJUSTMENT') as regular_kwh,
        sum(kwh) filter (where bill_type = 'ADJUSTMENT') as adjustment_kwh,
        sum(amount_vnd) filter (where bill_type = 'ADJUSTMENT') as adjustment_vnd,
        count(*) as bill_lines,
    from bill_lines
    group by period, customer_id, bill_id, tariff_code
)

select * from final
