-- one row per pipeline run, stage and check (key: run_id, stage, suite, check_name), straight from the
-- results every stage writes to lake/quality/<run_id>/<stage>.parquet: what the published figures stand on.

-- materialized: table
with

results as (
    select * from quality_results
),

final as (
    select
        -- run_id: the pipeline run that made the check (text)
        run_id,
        -- stage: ingest, raw, validated or marts (text)
        stage,
        -- suite: the group of checks, e.g. raw.interval_reads (text)
        suite,
        -- check_name: the check, e.g. expect_column_values_to_not_be_null(meter_id) (text)
        check_name,
        -- description: what was checked, in words (text)
        description,
        -- severity: critical (stops the publish) or warning (text)
        severity,
        -- rows_checked: rows the check looked at (count)
        rows_checked,
        -- rows_failed: rows that broke it (count)
        rows_failed,
        -- passed: whether the check passed; NULL when it had nothing to check (a dataset not yet delivered) (boolean)
        passed,
        -- checked_at: when the check ran, UTC (timestamp)
        checked_at,
    from results
    order by checked_at, run_id, stage, suite, check_name
)

select * from final
