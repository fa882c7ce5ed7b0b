-- one row per customer billed in the reconciled periods (key: customer_id): reading periods billed, how
-- many differ from the metered TOTAL-register consumption, and the largest difference in kWh.
-- Billed: REGULAR lines of the latest export versions, per (customer, period, period_start, period_end).
-- Metered: validated register consumption of the pairs of reads whose midpoint falls in the reading period.
-- Outside the tolerance: differing by more than 2 kWh and more than 2 %, or no metered consumption at all.
with

bill_lines as (
    select * from int_bill_lines__current
),

register_consumption as (
    select * from validated_register_consumption
),

billed as (
    select
        customer_id,
        period_start,
        period_end,
        sum(kwh)::decimal(38, 6) as billed_kwh,
    from bill_lines
    where bill_type = 'REGULAR'
    group by customer_id, period, period_start, period_end
),

metered as (
    select
        customer_id,
        consumption_kwh,
        read_from + (read_to - read_from) / 2 as read_midpoint,
    from register_consumption
    where register = 'TOTAL'
),

matched as (
    select
        b.customer_id,
        b.period_start,
        b.period_end,
        b.billed_kwh,
        sum(m.consumption_kwh) as metered_kwh,
    from billed as b
    left join metered as m
        on
            b.customer_id = m.customer_id
            and b.period_start <= m.read_midpoint
            and b.period_end + interval 1 day > m.read_midpoint
    group by all
),

compared as (
    select
        *,
        metered_kwh is null
        or (
            abs(billed_kwh - metered_kwh) > 2
            and abs(billed_kwh - metered_kwh) > 0.02 * abs(metered_kwh)
        ) as is_outside,
    from matched
),

final as (
    select
        customer_id,
        count(*) as reading_periods,
        count(*) filter (where is_outside) as periods_outside,
        max(abs(billed_kwh - coalesce(metered_kwh, 0))) as max_difference_kwh,
    from compared
    group by customer_id
)

select * from final
