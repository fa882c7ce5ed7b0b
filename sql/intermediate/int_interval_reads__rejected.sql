-- one row per delivered interval reading that VEE quarantines (validated/interval_rejects)
-- key: _ingest_seq, _line_no; a rejected reading counts as missing in the validated layer. The output
-- window (vee_from, vee_to) is in UTC instants.

-- materialized: view
-- parameters: vee_from, vee_to
with

screened as (
    select * from int_interval_reads__screened
    where
        reject_rule is not null
        and interval_start_utc >= getvariable('vee_from')
        and interval_start_utc < getvariable('vee_to')
),

final as (
    select
        meter_id,
        channel,
        interval_start,
        interval_start_utc,
        strftime(interval_start, '%Y-%m') as period,
        interval_minutes,
        recorded_kwh,
        upstream_quality,
        reject_rule as rule,
        case reject_rule
            when 'OUTSIDE_INSTALLATION'
                then format(
                    'interval_start {} is outside the installation of meter {} ({} to {})',
                    interval_start, meter_id, installed_on, coalesce(removed_on::varchar, 'now')
                )
            when 'ABOVE_MAX_KW'
                then format(
                    '{} kWh recorded in {} minutes is above max_kw {} kW of meter {} ({} kWh at most)',
                    recorded_kwh, interval_minutes, max_kw, meter_id,
                    round(max_kw * interval_minutes / 60, 6)
                )
        end as reason,
        _source_file,
        _line_no,
        _ingest_seq,
    from screened
)

select * from final
