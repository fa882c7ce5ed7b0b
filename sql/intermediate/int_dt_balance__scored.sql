-- one row per calendar month and DT of the DT energy balance (key: period, node_id): the DT's calendar-month
-- balance and its hotspot scoring, which mart_loss_hotspots_monthly publishes and mart_inspection_candidates
-- uses (through int_customer_signals__monthly) for its drop_with_dt_loss signal. Built from the aggregates
-- while they build the signals and while a marts file is assembled (dropped before it is published). A weak
-- balance (no calendar figure, more than 5 % of kwh_in estimated by VEE, missing intervals or customers
-- whose reads do not cover the month) is flagged; the change against the DT's own median over the three
-- months before (with at least two sound ones) and against the median sound DT of its feeder in the month.

-- materialized: view
with

energy_balance as (
    select * from aggregates_int_energy_balance__monthly
    where node_type = 'DT'
),

calendar as (
    select * from aggregates_int_consumption__calendar_monthly
),

consumed as (
    -- as in mart_energy_balance_monthly: NULL when more than 1 % of the DT's customers are not covered
    select
        period,
        dt_id as node_id,
        case when count(*) filter (where not is_covered) <= 0.01 * count(*) then sum(kwh_calendar) end
            as kwh_consumed_calendar,
        count(*) filter (where not is_covered) as customers_uncovered,
    from calendar
    where dt_id is not null
    group by period, dt_id
),

balance as (
    select
        energy_balance.period,
        energy_balance.node_id,
        energy_balance.parent_id,
        energy_balance.region_code,
        energy_balance.kwh_in,
        energy_balance.missing_intervals,
        energy_balance.estimated_kwh / nullif(energy_balance.kwh_in, 0) * 100 as estimated_share_pct,
        consumed.kwh_consumed_calendar,
        energy_balance.kwh_in - consumed.kwh_consumed_calendar as loss_calendar_kwh,
        (energy_balance.kwh_in - consumed.kwh_consumed_calendar)
        / nullif(energy_balance.kwh_in, 0)
        * 100 as loss_rate_calendar_pct,
        coalesce(consumed.customers_uncovered, 0) as customers_uncovered,
    from energy_balance
    left join consumed on energy_balance.period = consumed.period and energy_balance.node_id = consumed.node_id
),

flagged as (
    select
        *,
        strptime(period || '-01', '%Y-%m-%d') as month_start,
        loss_rate_calendar_pct is null
        or coalesce(estimated_share_pct, 0) > 5
        or coalesce(missing_intervals, 0) > 0
        or customers_uncovered > 0 as is_weak_balance,
    from balance
),

own_history as (
    select
        this_month.period,
        this_month.node_id,
        median(earlier.loss_rate_calendar_pct) as own_median_rate_pct,
        count(*) as history_months,
    from flagged as this_month
    inner join flagged as earlier
        on
            this_month.node_id = earlier.node_id
            and this_month.month_start > earlier.month_start
            and this_month.month_start - interval 3 month <= earlier.month_start
            and not earlier.is_weak_balance
    group by this_month.period, this_month.node_id
),

feeder_peers as (
    select
        period,
        parent_id,
        median(loss_rate_calendar_pct) as feeder_median_rate_pct,
        count(*) as feeder_dts,
    from flagged
    where not is_weak_balance and parent_id is not null
    group by period, parent_id
),

scored as (
    select
        flagged.*,
        case when own_history.history_months >= 2 then own_history.own_median_rate_pct end as own_median_rate_pct,
        feeder_peers.feeder_median_rate_pct,
        flagged.loss_rate_calendar_pct - feeder_peers.feeder_median_rate_pct as change_vs_feeder_pts,
        case
            when own_history.history_months >= 2
                then flagged.loss_rate_calendar_pct - own_history.own_median_rate_pct
        end as change_vs_own_pts,
    from flagged
    left join own_history on flagged.period = own_history.period and flagged.node_id = own_history.node_id
    left join feeder_peers on flagged.period = feeder_peers.period and flagged.parent_id = feeder_peers.parent_id
)

select * from scored
