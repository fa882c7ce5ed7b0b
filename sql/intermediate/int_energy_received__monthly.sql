-- one row per calendar month and region (key: period, region_code), for the months of
-- getvariable('build_periods'): validated energy (kWh, x multiplier) into the grid. region_code 'ALL' is
-- the company: its BOUNDARY meters. Region rows: the FEEDER meters of the region's feeders (node region
-- from the newest network snapshot listing the node; 'UNKNOWN' when none does). A region without feeder
-- data has no row.

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

metered as (
    select
        meter_monthly.period,
        meter_monthly.meter_id,
        meter_monthly.energy_kwh,
        meter_monthly.estimated_energy_kwh,
        meter_monthly.missing_intervals,
        meters.role,
        meters.node_id,
    from meter_monthly
    inner join meters on meter_monthly.meter_id = meters.meter_id
    where meters.role in ('BOUNDARY', 'FEEDER')
),

located as (
    select
        metered.*,
        case
            when metered.role = 'BOUNDARY' then 'ALL'
            else coalesce(network.region_code, 'UNKNOWN')
        end as region_code,
    from metered
    left join network on metered.node_id = network.node_id
),

final as (
    select
        period,
        region_code,
        sum(energy_kwh) as kwh_received,
        sum(estimated_energy_kwh) as estimated_kwh,
        sum(missing_intervals)::bigint as missing_intervals,
        count(distinct meter_id) as meters,
    from located
    group by period, region_code
)

select * from final
