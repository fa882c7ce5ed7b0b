-- one row per export with a bill line in a billing period of getvariable('build_periods') (key: export_id):
-- its highest export_version anywhere in the raw layer, the only version whose lines count
-- (int_bill_lines__current). A table of a few rows, so that the lines are matched against it by a
-- hash join built on its side.

-- materialized: table
-- parameters: build_periods
with

bill_lines as (
    select * from stg_lake__bill_lines
),

final as (
    select
        export_id,
        max(export_version) as export_version,
    from bill_lines
    group by export_id
    having bool_or(list_contains(getvariable('build_periods'), billing_period))
)

select * from final
