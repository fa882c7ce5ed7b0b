-- one row per calendar month of getvariable('signal_periods') and customer with calendar-month use in it
-- (key: period, customer_id): the customer's own reference for int_customer_signals__monthly, the upper
-- quartile of its covered calendar months before the month (NULL for those not covered), and how many
-- there are. Built alone before the signals: it reads every month at hand, ten million rows at full size,
-- and the signals' joins fit the memory limit only once its grouping is done.

-- materialized: table
-- parameters: signal_periods
with

-- read again where it is used rather than held whole
calendar as not materialized (
    select * from aggregates_int_consumption__calendar_monthly
),

wanted as (
    select
        period,
        left(period, 4)::integer * 12 + right(period, 2)::integer as month_no,
    from (select unnest(getvariable('signal_periods')) as period) as periods
),

customer_months as (
    -- each customer's months at hand in order, and its covered use in each (NULL for the months not
    -- covered); sorted after the grouping, which costs less than an ordered aggregate
    select
        histories.customer_id,
        list_transform(histories.history, lambda month: month.month_no) as month_nos,
        list_transform(histories.history, lambda month: month.covered_kwh) as covered_kwh,
    from (
        select
            customer_id,
            list_sort(
                list({
                    'month_no': left(period, 4)::integer * 12 + right(period, 2)::integer,
                    'covered_kwh': case when is_covered then kwh_calendar end
                })
            ) as history,
        from calendar
        group by customer_id
    ) as histories
),

own_references as (
    -- the upper quartile of the customer's covered months before each wanted month it has use in, and
    -- how many there are (lists sliced per month: a window over a growing frame costs more than the rows
    -- it reads)
    select
        positions.customer_id,
        positions.month_no,
        list_aggregate(positions.covered_kwh[1:positions.position - 1], 'quantile_cont', 0.75) as own_reference_kwh,
        list_count(positions.covered_kwh[1:positions.position - 1]) as history_months,
    from (
        select
            customer_months.customer_id,
            customer_months.covered_kwh,
            wanted.month_no,
            list_position(customer_months.month_nos, wanted.month_no) as position,
        from customer_months
        cross join wanted
    ) as positions
    where positions.position is not null
),

final as (
    select
        wanted.period,
        own_references.customer_id,
        own_references.own_reference_kwh,
        own_references.history_months,
    from own_references
    inner join wanted on own_references.month_no = wanted.month_no
)

select * from final
