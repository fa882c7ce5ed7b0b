-- one row per calendar month and customer with at least one revenue-protection signal on (key: period,
-- customer_id), for the months of getvariable('signal_periods'): the signals mart_inspection_candidates
-- lists and scores, kept in the aggregates so that publishing does not recompute them over all history.
-- A month's signals read every calendar month before it (the customer's own reference), the month's
-- calendar figures of every customer (the peers' median), its bills and its DT's hotspot score, which reads
-- the three months before: a month is rebuilt with every later one (etl/marts/aggregates.py). Signals:
-- drop_vs_history (the calendar-month use is at most 75 % of the customer's reference, the upper quartile
-- of its covered months before, at least three and a reference of 30 kWh or more, after dividing by the same
-- ratio's median among customers of the region and class), drop_with_dt_loss (a drop to 85 % while the
-- DT's hotspot score is at least 1 point), near_zero (at most 10 % of that reference while connected),
-- after_disconnection (use in a month after the customer's disconnection date), tou_mismatch (time-of-use
-- registers differing from the total by more than 1 kWh and 1 %, beyond register rounding),
-- billed_below_metered (regular bills under the reading periods ending in the month by more than 1 kWh,
-- 1 % and register rounding). A customer-month with none is not kept: it counts as no signal.

-- materialized: table
-- parameters: signal_periods
with

-- the months' bills only: the join would otherwise hold every month's
billed as (
    select * from aggregates_int_customer_billed__monthly
    where period in (select unnest(getvariable('signal_periods')))
),

-- the DTs' hotspot scores, as mart_loss_hotspots_monthly publishes them
hotspots as (
    select * from int_dt_balance__scored
),

months as (
    select
        *,
        strptime(period || '-01', '%Y-%m-%d') as month_start,
        strptime(period || '-01', '%Y-%m-%d') + interval 1 month as month_end,
    from aggregates_int_consumption__calendar_monthly
    where period in (select unnest(getvariable('signal_periods')))
),

own_references as (
    select * from int_customer_signals__references
),

history as (
    select
        months.*,
        own_references.own_reference_kwh,
        own_references.history_months,
    from months
    inner join own_references
        on months.period = own_references.period and months.customer_id = own_references.customer_id
),

ratios as (
    select
        *,
        case
            when is_covered and history_months >= 3 and own_reference_kwh >= 30 then kwh_calendar / own_reference_kwh
        end as own_ratio,
    from history
),

peer_medians as (
    select
        period,
        region_code,
        customer_class,
        median(own_ratio) as median_ratio,
    from ratios
    group by period, region_code, customer_class
),

against_peers as (
    select
        ratios.*,
        ratios.own_ratio / nullif(peer_medians.median_ratio, 0) as peer_ratio,
    from ratios
    inner join peer_medians
        on
            ratios.period = peer_medians.period
            and ratios.region_code is not distinct from peer_medians.region_code
            and ratios.customer_class is not distinct from peer_medians.customer_class
),

signals as (
    select
        against_peers.period,
        against_peers.customer_id,
        against_peers.dt_id,
        against_peers.feeder_id,
        against_peers.region_code,
        against_peers.customer_class,
        against_peers.kwh_calendar,
        against_peers.own_reference_kwh,
        against_peers.peer_ratio,
        against_peers.kwh_metered_read,
        against_peers.tou_gap_kwh,
        billed.kwh_billed,
        greatest(hotspots.change_vs_feeder_pts, hotspots.change_vs_own_pts) as dt_score_pts,
        coalesce(against_peers.peer_ratio <= 0.75, false) as drop_vs_history,
        coalesce(
            against_peers.peer_ratio <= 0.85
            and greatest(hotspots.change_vs_feeder_pts, hotspots.change_vs_own_pts) >= 1,
            false
        ) as drop_with_dt_loss,
        coalesce(
            against_peers.own_ratio <= 0.10
            and (against_peers.disconnected_on is null or against_peers.disconnected_on >= against_peers.month_end),
            false
        ) as near_zero,
        coalesce(
            against_peers.disconnected_on < against_peers.month_start and against_peers.kwh_calendar > 0, false
        ) as after_disconnection,
        coalesce(
            against_peers.tou_gap_kwh > greatest(1, 0.01 * against_peers.kwh_metered_read), false
        ) as tou_mismatch,
        coalesce(
            billed.kwh_billed
            < against_peers.kwh_metered_read
            - greatest(1, 0.01 * against_peers.kwh_metered_read, against_peers.reading_tolerance_kwh),
            false
        ) as billed_below_metered,
    from against_peers
    left join billed on against_peers.period = billed.period and against_peers.customer_id = billed.customer_id
    left join hotspots
        on
            against_peers.period = hotspots.period and against_peers.dt_id = hotspots.node_id
            and not hotspots.is_weak_balance
),

final as (
    select * from signals
    where
        drop_vs_history
        or drop_with_dt_loss
        or near_zero
        or after_disconnection
        or tou_mismatch
        or billed_below_metered
)

select * from final
