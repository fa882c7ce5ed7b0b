-- one row per accepted raw inspection row, every delivery of an inspection included
-- (lineage key: _ingest_seq, _line_no; contract key inspection_id, the current state in
-- int_inspections__current). recovered_vnd excludes VAT.

-- materialized: view
with

source as (
    select * from raw_inspections
),

final as (
    select
        inspection_id,
        customer_id,
        region_code,
        inspected_on,
        result,
        violation_type,
        recovered_kwh,
        recovered_vnd,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
)

select * from final
