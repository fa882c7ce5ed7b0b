-- one row per bill line that counts in a billing period of getvariable('build_periods')
-- (key: export_id, export_version, bill_id, line_no).
-- A line counts when its export_version is the highest of its export_id anywhere in the raw layer (a new
-- version replaces every line of the older ones, in every billing period) and, among deliveries of its key,
-- it comes from the most recently ingested file, then the later line. A re-delivered key may have moved to
-- another billing period, so the deduplication looks at every period of the exports seen in the periods
-- built; the runner registers raw_bill_lines over those periods. ADJUSTMENT lines count with their sign.
with

bill_lines as (
    select * from stg_lake__bill_lines
),

periods as (
    -- a caller that sets only getvariable('period') (the reconciliation check) gets that one period
    select unnest(coalesce(getvariable('build_periods'), [getvariable('period')])) as period
),

period_exports as (
    select distinct bill_lines.export_id
    from bill_lines
    where bill_lines.billing_period in (select periods.period from periods)
),

export_lines as (
    select *
    from bill_lines
    where export_id in (select period_exports.export_id from period_exports)
),

latest_versions as (
    select
        export_id,
        max(export_version) as export_version,
    from export_lines
    group by export_id
),

latest_lines as (
    select export_lines.*
    from export_lines
    inner join latest_versions
        on
            export_lines.export_id = latest_versions.export_id
            and export_lines.export_version = latest_versions.export_version
),

deduplicated as (
    select * from latest_lines
    qualify row_number() over (
        partition by export_id, export_version, bill_id, line_no
        order by _ingest_seq desc, _line_no desc
    ) = 1
),

final as (
    select
        billing_period as period,
        export_id,
        export_version,
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
    from deduplicated
    where billing_period in (select periods.period from periods)
)

select * from final
