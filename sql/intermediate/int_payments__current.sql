-- one row per payment_id whose paid_at falls in the local calendar month getvariable('period')
-- (key: payment_id). Among deliveries of a payment_id the most recently ingested file wins, then the later
-- line; a re-delivery may move the payment to another month, so every delivery of the month's ids is read.
with

payments as (
    select * from stg_lake__payments
),

month_bounds as (
    select
        strptime(getvariable('period') || '-01', '%Y-%m-%d') as month_start,
        strptime(getvariable('period') || '-01', '%Y-%m-%d') + interval 1 month as month_end,
),

period_ids as (
    select distinct payments.payment_id
    from payments
    cross join month_bounds
    where payments.paid_at >= month_bounds.month_start and payments.paid_at < month_bounds.month_end
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
    where strftime(paid_at, '%Y-%m') = getvariable('period')
)

select * from final
