-- one row per region (key: region_code): its name in the newest regions snapshot that lists it, the
-- optional reference dataset of contract v2. Within one snapshot a repeated code keeps the most recently
-- ingested row. No snapshot at all: no rows, and the marts show the codes.

-- materialized: view
with

source as (
    select * from raw_regions
),

renamed as (
    select
        region_code,
        region_name,
        _snapshot_date as snapshot_date,
        _ingest_seq,
        _line_no,
    from source
),

final as (
    select
        region_code,
        region_name,
    from renamed
    qualify row_number() over (
        partition by region_code
        order by snapshot_date desc, _ingest_seq desc, _line_no desc
    ) = 1
)

select * from final
