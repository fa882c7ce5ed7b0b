-- one row per year, region, KPI and plans snapshot (key: plan_year, region_code, kpi, snapshot_date)
-- region_code 'ALL' is the whole company. Targets: KWH_SOLD in kWh for the year, AVG_PRICE in VND/kWh,
-- LOSS_RATE in percent. Within one snapshot a repeated key keeps the most recently ingested row.

-- materialized: view
with

source as (
    select * from raw_plans
),

renamed as (
    select
        year as plan_year,
        region_code,
        kpi,
        target,
        _snapshot_date as snapshot_date,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
),

final as (
    select * from renamed
    qualify row_number() over (
        partition by plan_year, region_code, kpi, snapshot_date
        order by _ingest_seq desc, _line_no desc
    ) = 1
)

select * from final
