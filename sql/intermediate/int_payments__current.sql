-- one row per payment_id whose paid_at falls in a local calendar month of getvariable('build_periods')
-- (key: payment_id). Among deliveries of a payment_id the most recently ingested file wins, then the later
-- line; a re-delivery may move the payment to another month, so every delivery of the months' ids is read
-- (the runner registers raw_payments over every month holding one).
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

deliveries as (
    select *
    from payments
    where payment_id in (select period_ids.payment_id from period_ids)
),

latest as (
    select * from deliveries
    qualify row_number() over (partition by payment_id order by _ingest_seq desc, _line_no desc) = 1
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
