-- one row per plan year, region and KPI (key: plan_year, region_code, kpi): the target of the newest plans
-- snapshot that lists the key; region_code 'ALL' is the company plan

-- materialized: table
with

plans as (
    select * from stg_lake__plans
),

newest as (
    select * from plans
    qualify row_number() over (partition by plan_year, region_code, kpi order by snapshot_date desc) = 1
),

final as (
    select
        plan_year,
        region_code,
        kpi,
        target,
        snapshot_date,
    from newest
)

select * from final
