-- one row per period of mart_kpi_monthly (key: period): the lowest and highest price of the newest tariffs
-- snapshot among the tariffs in force during the period or the month before it (a bill of period P covers
-- a reading period that ends in P and may start in P - 1). Prices are NULL when no tariff was in force.
with

tariffs as (
    select * from stg_lake__tariffs
),

kpis as (
    select * from mart_kpi_monthly
),

newest_tariffs as (
    select * from tariffs
    qualify snapshot_date = max(snapshot_date) over ()
),

periods as (
    select distinct
        period,
        strptime(period || '-01', '%Y-%m-%d')::date as month_start,
    from kpis
),

windows as (
    select
        period,
        (month_start - interval 1 month)::date as window_start,
        (month_start + interval 1 month - interval 1 day)::date as window_end,
    from periods
),

final as (
    select
        w.period,
        min(t.price_vnd_per_kwh) as lowest_price_vnd_per_kwh,
        max(t.price_vnd_per_kwh) as highest_price_vnd_per_kwh,
    from windows as w
    left join newest_tariffs as t
        on
            w.window_end >= t.valid_from
            and (t.valid_to is null or w.window_start <= t.valid_to)
    group by w.period
)

select * from final
