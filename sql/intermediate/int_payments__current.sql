-- one row per payment_id whose paid_at falls in a local calendar month of getvariable('build_periods')
-- (key: payment_id). Among deliveries of a payment_id the most recently ingested file wins, then the later
-- line; a re-delivery may move the payment to another month, so every delivery of the months' ids is read
-- (the runner registers raw_payments over every month holding one).
-- A view: int_cashless__monthly, its one reader, aggregates it in the same pass.

-- materialized: view
-- parameters: build_periods

-- Each step reads the staging view itself rather than a shared CTE: DuckDB materialises a CTE read more
-- than once with every column, where a view read is a scan of the columns that step needs.
with

-- payment ids delivered more than once, found by a 64-bit hash: a collision only brings more rows to the
-- exact comparison below, never drops one
repeated_ids as (
    select hash(payment_id) as id_hash,
    from stg_lake__payments
    group by id_hash
    having count(*) > 1
),

-- among the deliveries of a repeated id, every one but the most recently ingested file's later line;
-- (_ingest_seq, _line_no) names one raw row
superseded as (
    select
        _ingest_seq,
        _line_no,
    from stg_lake__payments
    where hash(payment_id) in (select repeated_ids.id_hash from repeated_ids)
    qualify row_number() over (partition by payment_id order by _ingest_seq desc, _line_no desc) > 1
),

final as (
    select
        strftime(payments.paid_at, '%Y-%m') as period,
        payments.payment_id,
        payments.bill_id,
        payments.customer_id,
        payments.paid_at,
        payments.amount_vnd,
        payments.channel,
        payments.is_cashless,
        payments._source_file,
        payments._line_no,
        payments._ingest_seq,
    from stg_lake__payments as payments
    anti join superseded
        on
            payments._ingest_seq = superseded._ingest_seq
            and payments._line_no = superseded._line_no
    where list_contains(getvariable('build_periods'), strftime(payments.paid_at, '%Y-%m'))
)

select * from final
