-- one row per accepted raw bill line, re-deliveries included
-- (lineage key: _ingest_seq, _line_no; contract key export_id, export_version, bill_id, line_no).
-- Kept undeduplicated on purpose: which line counts depends on the newest export version over every
-- period, which int_bill_lines__current works out for the billing periods it builds.

-- materialized: view
with

source as (
    select * from raw_bill_lines
),

final as (
    select
        export_id,
        export_version,
        billing_period,
        bill_id,
        line_no,
        customer_id,
        bill_type,
        period_start,
        period_end,
        tariff_code,
        component,
        kwh,
        unit_price_vnd,
        amount_vnd,
        vat_vnd,
        issued_on,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
)

select * from final
