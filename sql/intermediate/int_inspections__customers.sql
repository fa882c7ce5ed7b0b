-- one row per inspection (key: inspection_id) in its current state, with the customer and the outcome: the
-- inspection history that holds recently inspected customers back from the candidate list and measures
-- each signal's hit rate.

-- materialized: table
with

inspections as (
    select * from int_inspections__current
),

final as (
    select
        inspection_id,
        customer_id,
        inspected_on,
        strftime(inspected_on, '%Y-%m') as period,
        result,
        violation_type,
    from inspections
    where customer_id is not null
)

select * from final
