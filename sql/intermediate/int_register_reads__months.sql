-- one row per month with a raw register read in the months registered (key: period): the months of
-- int_register_reads__indexed's grid, every month delivered, even one whose reads were all rejected (its
-- index carries the state on). A model of its own so that VEE can chain the registers one range of meters
-- at a time over the months of every meter.

-- materialized: table
with

reads as (
    select * from stg_lake__register_reads
),

final as (
    select distinct
        strftime(read_at, '%Y-%m') as period,
        date_trunc('month', read_at) + interval 1 month as month_end,
    from reads
)

select * from final
