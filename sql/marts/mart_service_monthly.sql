-- one row per period and region (key: period, region_code; the company row is region_code 'ALL'):
-- customer service requests received, resolved on time, in the backlog and escalated. Every month from
-- the first to the last month with an operations timestamp has a row for the company and for every
-- region with operations rows. A request counts in its own region_code, by its current state (the row
-- of the most recently ingested file); months follow the company's local time. Counts are 0 where nothing
-- happened; only ratios are NULL.

-- materialized: table
with

service as (
    select * from aggregates_int_service__monthly
),

final as (
    select
        -- period: calendar month, 'YYYY-MM' (text)
        period,
        -- region_code: the unit that handles the requests, 'ALL' for the company (text)
        region_code,
        -- requests_received: requests whose received_at falls in the period, cancelled ones included (count)
        requests_received,
        -- requests_resolved: requests with status RESOLVED whose closed_at falls in the period (count)
        requests_resolved,
        -- resolved_on_time: of those, the ones closed at or before due_at (count)
        resolved_on_time,
        -- on_time_pct: resolved_on_time / requests_resolved x 100; NULL when none was resolved (%)
        on_time_pct,
        -- backlog_end: requests received before the period's end and not closed before it (count)
        backlog_end,
        -- overdue_end: of the backlog, those whose due_at is before the period's end (count)
        overdue_end,
        -- escalated: requests received in the period that the customer escalated (count)
        escalated,
        -- requests_received_ytd: requests_received summed from January to the period (count)
        requests_received_ytd,
        -- on_time_ytd_pct: resolved_on_time / requests_resolved, both summed from January, x 100 (%)
        on_time_ytd_pct,
    from service
    order by period, region_code
)

select * from final
