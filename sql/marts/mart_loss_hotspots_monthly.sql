-- one row per calendar month and DT of mart_energy_balance_monthly (key: period, node_id), from the same
-- aggregates through int_dt_balance__scored (the marts read aggregates only, never each other). The DT's
-- calendar-month loss rate against its own median over the three months before (with at least two of them)
-- and against the median DT of its feeder in the month (DTs with a weak balance left out of both);
-- score_pts is the larger of the two excesses. A weak balance (no calendar figure, more than 5 % of kwh_in
-- estimated by VEE, missing intervals or customers whose reads do not cover the month) is flagged and
-- ranked after every sound one. Unrounded; kWh exact decimals, percentages 0-100 as DOUBLE.

-- materialized: table
with

scored as (
    select * from int_dt_balance__scored
),

final as (
    select
        -- period: calendar month, 'YYYY-MM' (text)
        period,
        -- node_id: the DT (text)
        node_id,
        -- feeder_id: the DT's feeder in the newest network snapshot (text)
        parent_id as feeder_id,
        -- region_code: the DT's district power unit (text)
        region_code,
        -- hotspot_rank: 1 = the month's strongest sign of missing energy; weak balances after all others (rank)
        rank() over (
            partition by period
            order by is_weak_balance, greatest(change_vs_feeder_pts, change_vs_own_pts) desc nulls last
        ) as hotspot_rank,
        -- score_pts: the larger of change_vs_feeder_pts and change_vs_own_pts (points)
        greatest(change_vs_feeder_pts, change_vs_own_pts) as score_pts,
        -- loss_rate_calendar_pct: the DT's calendar-month loss rate, as in mart_energy_balance_monthly (%)
        loss_rate_calendar_pct,
        -- change_vs_own_pts: loss_rate_calendar_pct minus own_median_rate_pct (points)
        change_vs_own_pts,
        -- change_vs_feeder_pts: loss_rate_calendar_pct minus feeder_median_rate_pct (points)
        change_vs_feeder_pts,
        -- unexplained_kwh: loss_calendar_kwh beyond the feeder's median rate, kwh_in x change_vs_feeder_pts / 100 (kWh)
        kwh_in * change_vs_feeder_pts / 100 as unexplained_kwh,
        -- is_weak_balance: no calendar rate, >5 % estimated, missing intervals or uncovered customers (flag)
        is_weak_balance,
        -- estimated_share_pct: energy VEE estimated by rule / kwh_in x 100 (%)
        estimated_share_pct,
        -- kwh_in: validated energy x multiplier of the DT's meters (kWh)
        kwh_in,
        -- kwh_consumed_calendar: the calendar-month consumption of the DT's customers (kWh)
        kwh_consumed_calendar,
        -- loss_calendar_kwh: kwh_in - kwh_consumed_calendar (kWh)
        loss_calendar_kwh,
        -- own_median_rate_pct: median calendar loss rate of the DT's sound months among the three before (%)
        own_median_rate_pct,
        -- feeder_median_rate_pct: median calendar loss rate of the feeder's DTs with a sound balance (%)
        feeder_median_rate_pct,
    from scored
    order by period, hotspot_rank, node_id
)

select * from final
