-- one row per bill line that counts in a billing period of getvariable('build_periods')
-- (key: export_id, export_version, bill_id, line_no).
-- A line counts when its export_version is the highest of its export_id anywhere in the raw layer (a new
-- version replaces every line of the older ones, in every billing period) and, among deliveries of its key,
-- it comes from the most recently ingested file, then the later line. A re-delivered key may have moved to
-- another billing period, so the deduplication looks at every period of the exports seen in the periods
-- built; the runner registers raw_bill_lines over those periods. ADJUSTMENT lines count with their sign.
-- A view: int_bill_lines__by_bill reads it once per pass, into a table at the grain the aggregates need.

-- materialized: view
-- parameters: build_periods

-- Each step reads the staging view itself rather than a shared CTE: DuckDB materialises a CTE read more
-- than once with every column, where a view read is a scan of the columns that step needs.
with

latest_versions as (
    select * from int_bill_lines__latest_versions
),

-- keys delivered more than once (a version is one per export here), found by a 64-bit hash of the key:
-- a collision only brings more lines to the exact comparison below, never drops one
repeated_keys as (
    select hash(bill_lines.export_id, bill_lines.bill_id, bill_lines.line_no) as key_hash,
    from stg_lake__bill_lines as bill_lines
    semi join latest_versions
        on
            bill_lines.export_id = latest_versions.export_id
            and bill_lines.export_version = latest_versions.export_version
    group by key_hash
    having count(*) > 1
),

-- among the deliveries of a repeated key, every one but the most recently ingested file's later line;
-- (_ingest_seq, _line_no) names one raw row
superseded as (
    select
        bill_lines._ingest_seq,
        bill_lines._line_no,
    from stg_lake__bill_lines as bill_lines
    semi join latest_versions
        on
            bill_lines.export_id = latest_versions.export_id
            and bill_lines.export_version = latest_versions.export_version
    where
        hash(bill_lines.export_id, bill_lines.bill_id, bill_lines.line_no)
        in (select repeated_keys.key_hash from repeated_keys)
    qualify
        row_number() over (
            partition by bill_lines.export_id, bill_lines.bill_id, bill_lines.line_no
            order by bill_lines._ingest_seq desc, bill_lines._line_no desc
        ) > 1
),

final as (
    select
        bill_lines.billing_period as period,
        bill_lines.export_id,
        bill_lines.export_version,
        bill_lines.bill_id,
        bill_lines.line_no,
        bill_lines.customer_id,
        bill_lines.bill_type,
        bill_lines.period_start,
        bill_lines.period_end,
        bill_lines.tariff_code,
        bill_lines.component,
        bill_lines.kwh,
        bill_lines.unit_price_vnd,
        bill_lines.amount_vnd,
        bill_lines.vat_vnd,
        bill_lines.issued_on,
        bill_lines._source_file,
        bill_lines._line_no,
        bill_lines._ingest_seq,
    from stg_lake__bill_lines as bill_lines
    anti join superseded
        on
            bill_lines._ingest_seq = superseded._ingest_seq
            and bill_lines._line_no = superseded._line_no
    semi join latest_versions
        on
            bill_lines.export_id = latest_versions.export_id
            and bill_lines.export_version = latest_versions.export_version
    where list_contains(getvariable('build_periods'), bill_lines.billing_period)
)

select * from final
