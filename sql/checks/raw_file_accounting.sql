-- one row per manifest file in the check's scope (key: ingest_seq): the manifest's row counts beside the
-- rows found in the lake's raw and quarantine Parquet of that file (counted from the Parquet footers).
with

manifest_rows as (
    select * from manifest_in_scope
),

stems as (
    select * from manifest_stems
),

footers as (
    select * from lake_files
),

lake_rows as (
    select
        stem,
        coalesce(sum(num_rows) filter (where not is_quarantine), 0) as raw_rows,
        coalesce(sum(num_rows) filter (where is_quarantine), 0) as quarantine_rows,
    from footers
    group by stem
),

final as (
    select
        m.source_file,
        m.dataset,
        m.status,
        m.ingest_seq,
        coalesce(m.rows_in, 0) as rows_in,
        coalesce(m.rows_accepted, 0) as rows_accepted,
        coalesce(m.rows_quarantined, 0) as rows_quarantined,
        coalesce(l.raw_rows, 0) as raw_rows,
        coalesce(l.quarantine_rows, 0) as quarantine_rows,
    from manifest_rows as m
    inner join stems as s
        on m.ingest_seq = s.ingest_seq and m.file_hash = s.file_hash
    left join lake_rows as l
        on s.stem = l.stem
)

select * from final
