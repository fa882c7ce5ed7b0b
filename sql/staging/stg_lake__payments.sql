-- one row per accepted raw payment row, re-deliveries included
-- (lineage key: _ingest_seq, _line_no; contract key payment_id, deduplicated in int_payments__current).
-- paid_at is local wall time (Asia/Ho_Chi_Minh); amount_vnd includes VAT.

-- materialized: view
with

source as (
    select * from raw_payments
),

final as (
    select
        payment_id,
        bill_id,
        customer_id,
        paid_at,
        amount_vnd,
        channel,
        -- CONTRACT.md §5: cashless is every channel but the two cash ones
        channel not in ('CASH_COUNTER', 'CASH_COLLECTOR') as is_cashless,
        _source_file,
        _line_no,
        _ingest_seq,
    from source
)

select * from final
