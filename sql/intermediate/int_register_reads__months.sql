-- one row per month with a raw register read in the months registered (key: period), with its number
-- (year x 12 + month): the months of int_register_reads__indexed, every month delivered, even one whose
-- reads were all rejected (its index carries the state on). A model of its own so that VEE can chain the
-- registers one range of meters at a time over the months of every meter.

-- materialized: table
with

reads as (
    select * from stg_lake__register_reads
),

final as (
    select distinct
        strftime(read_at, '%Y-%m') as period,
        year(read_at) * 12 + month(read_at) as month_no,
    from reads
)

select * from final
