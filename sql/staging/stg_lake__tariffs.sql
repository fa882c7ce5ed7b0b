-- one row per tariff component, validity start and tariffs snapshot
-- (key: tariff_code, component, valid_from, snapshot_date); prices exclude VAT (VND/kWh).
-- Within one snapshot a repeated key keeps the row of the most recently ingested file, then the later line.

-- materialized: view
with

source as (
    select * from raw_tariffs
),

renamed as (
    select
        tariff_code,
        customer_class,
        component,
        block_from_kwh,
        block_to_kwh,
        price_vnd_per_kwh,
        valid_from,
        valid_to,
        _snapshot_date as snapshot_date,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
),

final as (
    select * from renamed
    qualify row_number() over (
        partition by tariff_code, component, valid_from, snapshot_date
        order by _ingest_seq desc, _line_no desc
    ) = 1
)

select * from final
