-- one row per calendar month and FEEDER or DT node (key: period, node_id), for the months of
-- getvariable('build_periods'): validated energy into the node (kWh, x multiplier) and kWh billed to the
-- customers it feeds. A node has a row when its meters have validated energy or its customers were billed
-- in the month. A DT feeds the customers whose newest snapshot names it as dt_id; a FEEDER feeds the
-- customers of every DT whose newest network row names it as parent_id.

-- materialized: table
-- parameters: build_periods
with

meter_monthly as (
    -- active energy only, export counted against import: a meter's net energy in (CONTRACT.md §6)
    select
        * replace (
            case when channel = 'ACTIVE_EXPORT' then -energy_kwh else energy_kwh end as energy_kwh,
            case
                when channel = 'ACTIVE_EXPORT' then -estimated_energy_kwh else estimated_energy_kwh
            end as estimated_energy_kwh
        ),
    from validated_meter_monthly
    where
        period in (select unnest(getvariable('build_periods')))
        and channel in ('ACTIVE_IMPORT', 'ACTIVE_EXPORT')
),

meters as (
    select * from int_meters__current
),

network as (
    select * from int_network__current
),

customers as (
    select * from int_customers__current
),

bills as (
    select * from int_bill_lines__by_bill
),

node_energy as (
    select
        meter_monthly.period,
        meters.node_id,
        min(meters.role) as meter_role,
        sum(meter_monthly.energy_kwh) as kwh_in,
        sum(meter_monthly.estimated_energy_kwh) as estimated_kwh,
        sum(meter_monthly.missing_intervals)::bigint as missing_intervals,
        count(distinct meter_monthly.meter_id) as meters,
    from meter_monthly
    inner join meters on meter_monthly.meter_id = meters.meter_id
    where meters.role in ('FEEDER', 'DT')
    group by meter_monthly.period, meters.node_id
),

customer_sales as (
    select
        period,
        customer_id,
        sum(kwh) as kwh_sold,
    from bills
    group by period, customer_id
),

dt_billed as (
    select
        customer_sales.period,
        customers.dt_id as node_id,
        sum(customer_sales.kwh_sold) as kwh_billed,
        count(*) as customers_billed,
    from customer_sales
    inner join customers on customer_sales.customer_id = customers.customer_id
    group by customer_sales.period, customers.dt_id
),

feeder_billed as (
    select
        dt_billed.period,
        network.parent_id as node_id,
        sum(dt_billed.kwh_billed) as kwh_billed,
        sum(dt_billed.customers_billed)::bigint as customers_billed,
    from dt_billed
    inner join network on dt_billed.node_id = network.node_id
    where network.node_type = 'DT'
    group by dt_billed.period, network.parent_id
),

billed_rows as (
    select * from dt_billed
    union all
    select * from feeder_billed
),

billed as (
    select
        period,
        node_id,
        sum(kwh_billed) as kwh_billed,
        sum(customers_billed)::bigint as customers_billed,
    from billed_rows
    where node_id is not null
    group by period, node_id
),

nodes as (
    select
        period,
        node_id,
    from node_energy
    union
    select
        period,
        node_id,
    from billed
),

final as (
    select
        nodes.period,
        nodes.node_id,
        coalesce(network.node_type, node_energy.meter_role, 'DT') as node_type,
        coalesce(network.region_code, 'UNKNOWN') as region_code,
        network.parent_id,
        node_energy.kwh_in,
        node_energy.estimated_kwh,
        coalesce(billed.kwh_billed, 0) as kwh_billed,
        coalesce(billed.customers_billed, 0) as customers_billed,
        coalesce(node_energy.meters, 0) as meters,
        node_energy.missing_intervals,
    from nodes
    left join network on nodes.node_id = network.node_id
    left join node_energy on nodes.period = node_energy.period and nodes.node_id = node_energy.node_id
    left join billed on nodes.period = billed.period and nodes.node_id = billed.node_id
    where coalesce(network.node_type, node_energy.meter_role, 'DT') in ('FEEDER', 'DT')
)

select * from final
