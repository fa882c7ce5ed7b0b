-- one row per local calendar month whose register consumption or rejects new reads can change
-- key: period. Reads raw_register_reads from the month of the earliest new read on; a read is new
-- when its _ingest_seq is above getvariable('vee_since_seq'). A new read changes its own pair and
-- the next read's (whose check now compares with it), and so the pair after that one.

-- materialized: table
-- parameters: vee_since_seq
with

reads as (
    select
        meter_id,
        register,
        read_at,
        bool_or(_ingest_seq > getvariable('vee_since_seq')) as is_new,
    from stg_lake__register_reads
    group by all
),

sequenced as (
    select
        *,
        lead(read_at, 1) over by_time as next_read_at,
        lead(read_at, 2) over by_time as second_next_read_at,
    from reads
    window by_time as (partition by meter_id, register order by read_at)
),

touched as (
    select read_at as touched_at
    from sequenced
    where is_new
    union all
    select next_read_at
    from sequenced
    where is_new
    union all
    select second_next_read_at
    from sequenced
    where is_new
),

final as (
    select distinct strftime(touched_at, '%Y-%m') as period
    from touched
    where touched_at is not null
)

select * from final
