-- one row per meter, register and pair of consecutive accepted reads (validated/register_consumption)
-- key: meter_id, register, read_to; consumption_kwh = recorded consumption x multiplier

-- materialized: view
with

measured as (
    select * from int_register_reads__measured
),

final as (
    select * from measured
    where rule <> 'UNRESOLVED_DROP'
)

select * from final
