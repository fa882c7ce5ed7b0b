-- one row per payment_id whose paid_at falls in a local calendar month of getvariable('build_periods')
-- (key: payment_id). Among deliveries of a payment_id the most recently ingested file wins, then the later
-- line; a re-delivery may move the payment to another month, so every delivery of the months' ids is read
-- (the runner registers raw_payments over every month holding one).

-- materialized: table
-- parameters: build_periods
with

payments as (
    select * from stg_lake__payments
),

periods as (
    select unnest(getvariable('build_periods')) as period
),

period_ids as (
    select distinct payments.payment_id
    from payments
    where strftime(payments.paid_at, '%Y-%m') in (select periods.period from periods)
),

-- the last delivery of each of the months' ids, found on the key columns alone; (_ingest_seq, _line_no)
-- names one raw row
winners as (
    select max({ 'ingest_seq': payments._ingest_seq, 'line_no': payments._line_no }) as winner,
    from payments
    where payments.payment_id in (select period_ids.payment_id from period_ids)
    group by payments.payment_id
),

latest as (
    select payments.*
    from payments
    inner join winners
        on
            payments._ingest_seq = winners.winner.ingest_seq
            and payments._line_no = winners.winner.line_no
),

final as (
    select
        strftime(paid_at, '%Y-%m') as period,
        payment_id,
        bill_id,
        customer_id,
        paid_at,
        amount_vnd,
        channel,
        is_cashless,
        _source_file,
        _line_no,
        _ingest_seq,
    from latest
    where strftime(paid_at, '%Y-%m') in (select periods.period from periods)
)

select * from final
