-- one row per calendar month and FEEDER or DT node (key: period, node_id), for every node whose meters
-- have validated energy or whose customers were billed in the month. A DT feeds its own customers (their
-- dt_id), a FEEDER the customers of all its DTs (their parent_id), by the newest customers and network
-- snapshots. Node region from the newest network snapshot listing the node ('UNKNOWN' when none does).
-- Unrounded; kWh exact decimals, percentages 0-100 as DOUBLE.

-- materialized: table
with

balance as (
    select * from aggregates_int_energy_balance__monthly
),

calendar as (
    select * from aggregates_int_consumption__calendar_monthly
),

calendar_rows as (
    select
        period,
        dt_id as node_id,
        kwh_calendar,
        is_covered,
    from calendar
    where dt_id is not null
    union all
    select
        period,
        feeder_id as node_id,
        kwh_calendar,
        is_covered,
    from calendar
    where feeder_id is not null
),

consumed as (
    -- the calendar figures count when the reads of at most 1 % of the node's customers stop short of the
    -- month's end (docs/loss_hunting.md)
    select
        period,
        node_id,
        sum(kwh_calendar) as kwh_consumed_calendar,
        count(*) filter (where not is_covered) as customers_uncovered,
        count(*) filter (where not is_covered) <= 0.01 * count(*) as is_calendar_complete,
    from calendar_rows
    group by period, node_id
),

joined as (
    select
        balance.*,
        case when consumed.is_calendar_complete then consumed.kwh_consumed_calendar end as kwh_consumed_calendar,
        coalesce(consumed.customers_uncovered, 0) as customers_uncovered,
    from balance
    left join consumed on balance.period = consumed.period and balance.node_id = consumed.node_id
),

final as (
    select
        -- period: calendar month of the energy and billing period of the kWh billed, 'YYYY-MM' (text)
        period,
        -- node_id: the network node (text)
        node_id,
        -- node_type: FEEDER or DT (text)
        node_type,
        -- region_code: the node's district power unit (text)
        region_code,
        -- kwh_in: validated energy x multiplier of the node's meters; NULL when no meter of the node reported (kWh)
        kwh_in,
        -- kwh_billed: kwh_sold of the customers the node feeds, 0 when none was billed (kWh)
        kwh_billed,
        -- loss_kwh: kwh_in - kwh_billed; NULL without kwh_in (kWh)
        kwh_in - kwh_billed as loss_kwh,
        -- loss_rate_pct: loss_kwh / kwh_in x 100; NULL without kwh_in or when it is 0 (%)
        (kwh_in - kwh_billed) / nullif(kwh_in, 0) * 100 as loss_rate_pct,
        -- estimated_share_pct: energy VEE estimated by rule / kwh_in x 100 (%)
        estimated_kwh / nullif(kwh_in, 0) * 100 as estimated_share_pct,
        -- parent_id: the node's parent (a FEEDER's BOUNDARY, a DT's FEEDER) in the newest network snapshot (text)
        parent_id,
        -- estimated_kwh: the part of kwh_in VEE estimated by rule (kWh)
        estimated_kwh,
        -- missing_intervals: intervals of the node's meters with no value after VEE (count)
        missing_intervals,
        -- meters: meters of the node with validated data in the month (count)
        meters,
        -- customers_billed: customers fed by the node with a bill line in the period (count)
        customers_billed,
        -- kwh_consumed_calendar: calendar-month consumption of the node's customers; NULL if >1 % not covered (kWh)
        kwh_consumed_calendar,
        -- loss_calendar_kwh: kwh_in - kwh_consumed_calendar; NULL without either (kWh)
        kwh_in - kwh_consumed_calendar as loss_calendar_kwh,
        -- loss_rate_calendar_pct: loss_calendar_kwh / kwh_in x 100; NULL without either or when kwh_in is 0 (%)
        (kwh_in - kwh_consumed_calendar) / nullif(kwh_in, 0) * 100 as loss_rate_calendar_pct,
        -- customers_uncovered: customers whose reads miss the month's end or start or begin before DT energy (count)
        customers_uncovered,
    from joined
    order by period, node_type, node_id
)

select * from final
