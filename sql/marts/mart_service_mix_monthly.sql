-- one row per period, request type and channel with a request received or resolved (key: period,
-- request_type, channel), for the whole company: what customers ask for and how they reach the company.
-- A request counts by its current state (the row of the most recently ingested file); months follow the
-- company's local time.

-- materialized: table
with

mix as (
    select * from aggregates_int_service_mix__monthly
),

final as (
    select
        -- period: calendar month, 'YYYY-MM' (text)
        period,
        -- request_type: what the customer asked for, as in service_requests (text)
        request_type,
        -- channel: how the request reached the company, as in service_requests (text)
        channel,
        -- requests_received: requests of the type and channel whose received_at falls in the period (count)
        requests_received,
        -- requests_resolved: of the type and channel, requests RESOLVED with closed_at in the period (count)
        requests_resolved,
        -- resolved_on_time: of those, the ones closed at or before due_at (count)
        resolved_on_time,
    from mix
    order by period, request_type, channel
)

select * from final
