-- one row per bill line that counts in a billing period of getvariable('build_periods')
-- (key: export_id, export_version, bill_id, line_no).
-- A line counts when its export_version is the highest of its export_id anywhere in the raw layer (a new
-- version replaces every line of the older ones, in every billing period) and, among deliveries of its key,
-- it comes from the most recently ingested file, then the later line. A re-delivered key may have moved to
-- another billing period, so the deduplication looks at every period of the exports seen in the periods
-- built; the runner registers raw_bill_lines over those periods. ADJUSTMENT lines count with their sign.

-- materialized: table
-- parameters: build_periods
with

bill_lines as (
    select * from stg_lake__bill_lines
),

periods as (
    select unnest(getvariable('build_periods')) as period
),

line_keys as (
    select
        export_id,
        export_version,
        billing_period,
        bill_id,
        line_no,
        _ingest_seq,
        _line_no,
    from bill_lines
),

period_exports as (
    select distinct line_keys.export_id
    from line_keys
    where line_keys.billing_period in (select periods.period from periods)
),

latest_versions as (
    select
        export_id,
        max(export_version) as export_version,
    from line_keys
    where export_id in (select period_exports.export_id from period_exports)
    group by export_id
),

-- the winning delivery of each key, found on the key columns alone; (_ingest_seq, _line_no) names one raw row
winners as (
    select max({ 'ingest_seq': line_keys._ingest_seq, 'line_no': line_keys._line_no }) as winner,
    from line_keys
    semi join latest_versions
        on
            line_keys.export_id = latest_versions.export_id
            and line_keys.export_version = latest_versions.export_version
    group by line_keys.export_id, line_keys.export_version, line_keys.bill_id, line_keys.line_no
),

deduplicated as (
    select bill_lines.*
    from bill_lines
    inner join winners
        on
            bill_lines._ingest_seq = winners.winner.ingest_seq
            and bill_lines._line_no = winners.winner.line_no
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
