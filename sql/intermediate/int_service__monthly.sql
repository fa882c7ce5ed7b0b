-- one row per period and region_code of the operations calendar (key: period, region_code; the company
-- row is 'ALL'): mart_service_monthly's figures (CONTRACT.md §9), from the current state of every request.
-- A month's backlog is every request received before the month ends and not closed before then: as
-- closed_at >= received_at and due_at >= received_at (both contract rules), it is the requests received
-- up to the month less those closed up to it, and the overdue backlog is those due up to the month less
-- those both due and closed up to it. Counts are 0 where nothing happened; only ratios are NULL.

-- materialized: table
with

calendar as (
    select * from int_operations__calendar
),

requests as (
    select * from int_service_requests__current
),

-- months as the first instant of the month (cheaper to group on than text), named 'YYYY-MM' once grouped
scoped as (
    select
        region_code,
        date_trunc('month', received_at) as received_month,
        date_trunc('month', closed_at) as closed_month,
        date_trunc('month', due_at) as due_month,
        -- greatest() skips a NULL: an open request is never due and closed
        case when closed_at is not null then date_trunc('month', greatest(due_at, closed_at)) end
            as due_and_closed_month,
        status = 'RESOLVED' as resolved,
        closed_at <= due_at as on_time,
        escalated,
    from requests
),

-- every request counts in its region and in the company: each count by region and for all regions
received as (
    select
        strftime(received_month, '%Y-%m') as period,
        case when grouping(region_code) = 1 then 'ALL' else region_code end as scope,
        count(*) as requests_received,
        count(*) filter (where escalated) as escalated,
    from scoped
    group by grouping sets ((region_code, received_month), (received_month))
),

closed as (
    select
        strftime(closed_month, '%Y-%m') as period,
        case when grouping(region_code) = 1 then 'ALL' else region_code end as scope,
        count(*) as closed,
        count(*) filter (where resolved) as requests_resolved,
        count(*) filter (where resolved and on_time) as resolved_on_time,
    from scoped
    where closed_month is not null
    group by grouping sets ((region_code, closed_month), (closed_month))
),

due as (
    select
        strftime(due_month, '%Y-%m') as period,
        case when grouping(region_code) = 1 then 'ALL' else region_code end as scope,
        count(*) as due,
    from scoped
    group by grouping sets ((region_code, due_month), (due_month))
),

due_and_closed as (
    select
        strftime(due_and_closed_month, '%Y-%m') as period,
        case when grouping(region_code) = 1 then 'ALL' else region_code end as scope,
        count(*) as due_and_closed,
    from scoped
    where due_and_closed_month is not null
    group by grouping sets ((region_code, due_and_closed_month), (due_and_closed_month))
),

filled as (
    select
        calendar.period,
        calendar.region_code,
        left(calendar.period, 4) as year,
        coalesce(received.requests_received, 0) as requests_received,
        coalesce(closed.requests_resolved, 0) as requests_resolved,
        coalesce(closed.resolved_on_time, 0) as resolved_on_time,
        coalesce(received.escalated, 0) as escalated,
        coalesce(closed.closed, 0) as closed,
        coalesce(due.due, 0) as due,
        coalesce(due_and_closed.due_and_closed, 0) as due_and_closed,
    from calendar
    left join received
        on calendar.period = received.period and calendar.region_code = received.scope
    left join closed
        on calendar.period = closed.period and calendar.region_code = closed.scope
    left join due
        on calendar.period = due.period and calendar.region_code = due.scope
    left join due_and_closed
        on calendar.period = due_and_closed.period and calendar.region_code = due_and_closed.scope
),

running as (
    select
        *,
        sum(requests_received - closed) over history as backlog_end,
        sum(due - due_and_closed) over history as overdue_end,
        sum(requests_received) over year_to_date as requests_received_ytd,
        sum(requests_resolved) over year_to_date as requests_resolved_ytd,
        sum(resolved_on_time) over year_to_date as resolved_on_time_ytd,
    from filled
    window
        history as (partition by region_code order by period rows unbounded preceding),
        year_to_date as (partition by region_code, year order by period rows unbounded preceding)
),

final as (
    select
        period,
        region_code,
        requests_received,
        requests_resolved,
        resolved_on_time,
        resolved_on_time / nullif(requests_resolved, 0) * 100 as on_time_pct,
        backlog_end::bigint as backlog_end,
        overdue_end::bigint as overdue_end,
        escalated,
        requests_received_ytd::bigint as requests_received_ytd,
        resolved_on_time_ytd / nullif(requests_resolved_ytd, 0) * 100 as on_time_ytd_pct,
    from running
)

select * from final
