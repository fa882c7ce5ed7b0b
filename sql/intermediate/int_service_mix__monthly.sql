-- one row per period, request_type and channel with any request received or resolved (key: period,
-- request_type, channel), for the whole company, by the current state of every request: what customers
-- ask for and how they reach the company.

-- materialized: table
with

requests as (
    select * from int_service_requests__current
),

-- grouped on the first instant of the month (cheaper than on text), named 'YYYY-MM' once grouped
received_by_month as (
    select
        date_trunc('month', received_at) as month,
        request_type,
        channel,
        count(*) as requests_received,
    from requests
    group by all
),

resolved_by_month as (
    select
        date_trunc('month', closed_at) as month,
        request_type,
        channel,
        count(*) as requests_resolved,
        count(*) filter (where closed_at <= due_at) as resolved_on_time,
    from requests
    where status = 'RESOLVED'
    group by all
),

received as (
    select
        strftime(month, '%Y-%m') as period,
        request_type,
        channel,
        requests_received,
    from received_by_month
),

resolved as (
    select
        strftime(month, '%Y-%m') as period,
        request_type,
        channel,
        requests_resolved,
        resolved_on_time,
    from resolved_by_month
),

final as (
    select
        coalesce(received.period, resolved.period) as period,
        coalesce(received.request_type, resolved.request_type) as request_type,
        coalesce(received.channel, resolved.channel) as channel,
        coalesce(received.requests_received, 0) as requests_received,
        coalesce(resolved.requests_resolved, 0) as requests_resolved,
        coalesce(resolved.resolved_on_time, 0) as resolved_on_time,
    from received
    full outer join resolved
        on
            received.period = resolved.period
            and received.request_type = resolved.request_type
            and received.channel = resolved.channel
)

select * from final
