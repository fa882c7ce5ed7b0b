-- one row per calendar month and customer worth a visit (key: period, customer_id): a customer with at least
-- one revenue-protection signal in the month (a drop alone does not list a customer: empty houses, rooftop
-- solar and seasonal businesses drop too) and no inspection in the six months up to its end. Signals,
-- from readings, bills, customers and the DT balance only: drop_vs_history (the calendar-month use is at
-- most 75 % of the customer's reference, the upper quartile of its covered months before, at least three
-- and a reference of 30 kWh or more, after dividing by the same ratio's median among customers of the
-- region and class), drop_with_dt_loss (a drop to 85 % while the DT's hotspot score is at least 1 point),
-- near_zero (at most 10 % of that reference while connected), after_disconnection (use in a month after the
-- customer's disconnection date), tou_mismatch (time-of-use registers differing from the total by more
-- than 1 kWh and 1 %, beyond register rounding), billed_below_metered (regular bills under the reading
-- periods ending in the month by more than 1 kWh, 1 % and register rounding). Each *_hit_rate_pct is the
-- share of violations among the inspections before the month whose customer had that signal in the month
-- before the visit. Never a name, address or phone.

-- materialized: table
with

flagged as (
    -- the customer-months with a signal on, as the aggregates keep them (int_customer_signals__monthly; a
    -- month with none counts as no signal): the held-back months, the hit rates and the ranks are made here
    select
        *,
        left(period, 4)::integer * 12 + right(period, 2)::integer as month_no,
        strptime(period || '-01', '%Y-%m-%d') as month_start,
        strptime(period || '-01', '%Y-%m-%d') + interval 1 month as month_end,
    from aggregates_int_customer_signals__monthly
),

inspections as (
    select * from aggregates_int_inspections__customers
    where result in ('VIOLATION', 'NO_VIOLATION')
),

visits as (
    -- each past inspection with the signals its customer had in the month before the visit
    select
        left(inspections.period, 4)::integer * 12 + right(inspections.period, 2)::integer as month_no,
        inspections.result = 'VIOLATION' as is_violation,
        coalesce(flagged.drop_vs_history, false) as drop_vs_history,
        coalesce(flagged.drop_with_dt_loss, false) as drop_with_dt_loss,
        coalesce(flagged.near_zero, false) as near_zero,
        coalesce(flagged.after_disconnection, false) as after_disconnection,
        coalesce(flagged.tou_mismatch, false) as tou_mismatch,
        coalesce(flagged.billed_below_metered, false) as billed_below_metered,
    from inspections
    left join flagged
        on
            inspections.customer_id = flagged.customer_id
            and left(inspections.period, 4)::integer * 12 + right(inspections.period, 2)::integer
            = flagged.month_no + 1
),

hit_rates as (
    select
        months_listed.month_no,
        count(*) filter (where visits.drop_vs_history and visits.is_violation) * 100.0
        / nullif(count(*) filter (where visits.drop_vs_history), 0) as drop_vs_history_hit_rate_pct,
        count(*) filter (where visits.drop_with_dt_loss and visits.is_violation) * 100.0
        / nullif(count(*) filter (where visits.drop_with_dt_loss), 0) as drop_with_dt_loss_hit_rate_pct,
        count(*) filter (where visits.near_zero and visits.is_violation) * 100.0
        / nullif(count(*) filter (where visits.near_zero), 0) as near_zero_hit_rate_pct,
        count(*) filter (where visits.after_disconnection and visits.is_violation) * 100.0
        / nullif(count(*) filter (where visits.after_disconnection), 0) as after_disconnection_hit_rate_pct,
        count(*) filter (where visits.tou_mismatch and visits.is_violation) * 100.0
        / nullif(count(*) filter (where visits.tou_mismatch), 0) as tou_mismatch_hit_rate_pct,
        count(*) filter (where visits.billed_below_metered and visits.is_violation) * 100.0
        / nullif(count(*) filter (where visits.billed_below_metered), 0) as billed_below_metered_hit_rate_pct,
    from (select distinct month_no from flagged) as months_listed
    left join visits on months_listed.month_no > visits.month_no
    group by months_listed.month_no
),

held_back as (
    select distinct
        flagged.period,
        flagged.customer_id,
    from flagged
    inner join inspections
        on
            flagged.customer_id = inspections.customer_id
            and flagged.month_end > inspections.inspected_on
            and flagged.month_start - interval 5 month <= inspections.inspected_on
),

scored as (
    select
        flagged.*,
        3 * flagged.drop_with_dt_loss::integer
        + flagged.drop_vs_history::integer
        + 2 * flagged.near_zero::integer
        + 3 * flagged.after_disconnection::integer
        + 2 * flagged.tou_mismatch::integer
        + 2 * flagged.billed_below_metered::integer
        + coalesce(least(greatest(1 - flagged.peer_ratio, 0), 1), 0)
        + coalesce(least(greatest(flagged.dt_score_pts, 0), 10) / 10, 0) as score,
        concat_ws(
            ',',
            case when flagged.drop_with_dt_loss then 'drop_with_dt_loss' end,
            case when flagged.drop_vs_history then 'drop_vs_history' end,
            case when flagged.near_zero then 'near_zero' end,
            case when flagged.after_disconnection then 'after_disconnection' end,
            case when flagged.tou_mismatch then 'tou_mismatch' end,
            case when flagged.billed_below_metered then 'billed_below_metered' end
        ) as signals,
    from flagged
    anti join held_back on flagged.period = held_back.period and flagged.customer_id = held_back.customer_id
    where
        flagged.drop_with_dt_loss
        or flagged.near_zero
        or flagged.after_disconnection
        or flagged.tou_mismatch
        or flagged.billed_below_metered
),

final as (
    select
        -- period: calendar month the signals describe, 'YYYY-MM' (text)
        scored.period,
        -- customer_id: the customer (text)
        scored.customer_id,
        -- dt_id: the customer's DT in the newest customers snapshot (text)
        scored.dt_id,
        -- feeder_id: the DT's feeder (text)
        scored.feeder_id,
        -- region_code: the customer's district power unit (text)
        scored.region_code,
        -- customer_class: the customer's class (text)
        scored.customer_class,
        -- candidate_rank: 1 = the month's first visit to make, by score (rank)
        row_number()
            over (partition by scored.period order by scored.score desc, scored.customer_id asc)
            as candidate_rank,
        -- score: weighted signals plus the drop and the DT's score as fractions, docs/loss_hunting.md (points)
        scored.score,
        -- signals: the signals on, comma-separated (text)
        scored.signals,
        -- drop_vs_history: use at most 75 % of own_reference_kwh, relative to similar customers (flag)
        scored.drop_vs_history,
        -- drop_with_dt_loss: use at most 85 % of own_reference_kwh, so relative, while the DT's score_pts >= 1 (flag)
        scored.drop_with_dt_loss,
        -- near_zero: use at most 10 % of own_reference_kwh while connected (flag)
        scored.near_zero,
        -- after_disconnection: use in a month after the disconnection date (flag)
        scored.after_disconnection,
        -- tou_mismatch: time-of-use registers differ from the total beyond rounding, 1 kWh and 1 % (flag)
        scored.tou_mismatch,
        -- billed_below_metered: regular bills under the reading periods beyond rounding, 1 kWh and 1 % (flag)
        scored.billed_below_metered,
        -- kwh_calendar: the customer's calendar-month consumption (kWh)
        scored.kwh_calendar,
        -- own_reference_kwh: upper quartile of the customer's covered calendar months before (kWh)
        scored.own_reference_kwh,
        -- peer_ratio: kwh_calendar / own_reference_kwh over the same ratio's median in the region and class (ratio)
        scored.peer_ratio,
        -- dt_score_pts: the DT's score_pts in mart_loss_hotspots_monthly; NULL for a weak balance (points)
        scored.dt_score_pts,
        -- kwh_metered_read: TOTAL consumption of the reading periods that end in the month (kWh)
        scored.kwh_metered_read,
        -- kwh_billed: kWh of the month's regular and final bills (kWh)
        scored.kwh_billed,
        -- tou_gap_kwh: |TOTAL - NORMAL - PEAK - OFFPEAK| beyond register rounding, periods ending in the month (kWh)
        scored.tou_gap_kwh,
        -- drop_vs_history_hit_rate_pct: violations / past inspections of customers with the signal (%)
        hit_rates.drop_vs_history_hit_rate_pct,
        -- drop_with_dt_loss_hit_rate_pct: the same for drop_with_dt_loss (%)
        hit_rates.drop_with_dt_loss_hit_rate_pct,
        -- near_zero_hit_rate_pct: the same for near_zero (%)
        hit_rates.near_zero_hit_rate_pct,
        -- after_disconnection_hit_rate_pct: the same for after_disconnection (%)
        hit_rates.after_disconnection_hit_rate_pct,
        -- tou_mismatch_hit_rate_pct: the same for tou_mismatch (%)
        hit_rates.tou_mismatch_hit_rate_pct,
        -- billed_below_metered_hit_rate_pct: the same for billed_below_metered (%)
        hit_rates.billed_below_metered_hit_rate_pct,
    from scored
    left join hit_rates on scored.month_no = hit_rates.month_no
    order by scored.period, candidate_rank
)

select * from final
