-- one row per DT and day of the DT energy at hand (key: node_id, day): the relative use of the day of
-- households (RESIDENTIAL), of INDUSTRIAL customers and of the other customers, and of the DT's own mix of
-- them (mix_factor), for shaping reading periods by their mix of customers
-- (int_consumption__calendar_monthly). Each DT's energy of the day against its mean over the three weeks
-- either side is fitted by least squares, across the DTs, on the households' and industrial
-- customers' shares of the DT's metered use (reading periods at hand): a group's factor is the fit at a DT
-- of that group alone (clamped to 0.1-3). Weekdays and holidays (Tet) show in the fit; nothing is taken
-- from a calendar. Days with fewer than 10 DTs have no row (the DT's energy is then used as it is).

-- materialized: table
with

meters as (
    select * from int_meters__current
),

customers as (
    select * from int_customers__current
),

daily as (
    select * from aggregates_int_energy_in__daily
),

pairs as (
    select
        consumption.consumption_kwh,
        customers.customer_class,
        customers.dt_id,
    from validated_register_consumption as consumption
    inner join meters on consumption.meter_id = meters.meter_id
    inner join customers on consumption.customer_id = customers.customer_id
    where consumption.register = 'TOTAL' and meters.role = 'CUSTOMER' and consumption.read_to > consumption.read_from
),

dt_mix as (
    select
        dt_id,
        sum(consumption_kwh::double) filter (where customer_class = 'RESIDENTIAL')
        / nullif(sum(consumption_kwh::double), 0) as household_share,
        sum(consumption_kwh::double) filter (where customer_class = 'INDUSTRIAL')
        / nullif(sum(consumption_kwh::double), 0) as industrial_share,
    from pairs
    where dt_id is not null
    group by dt_id
),

relative_daily as (
    -- each DT's energy of the day against its mean over the three weeks either side
    select
        daily.node_id,
        daily.day,
        coalesce(dt_mix.household_share, 0) as h,
        coalesce(dt_mix.industrial_share, 0) as i,
        daily.kwh_in::double / avg(daily.kwh_in::double) over (
            partition by daily.node_id order by daily.day
            range between interval 21 days preceding and interval 21 days following
        ) as y,
    from daily
    inner join dt_mix on daily.node_id = dt_mix.dt_id
    where daily.kwh_in > 0
),

day_moments as (
    select
        day,
        avg(y) as y,
        avg(h) as h,
        avg(i) as i,
        var_pop(h) as hh,
        var_pop(i) as ii,
        covar_pop(h, i) as hi,
        covar_pop(h, y) as hy,
        covar_pop(i, y) as iy,
    from relative_daily
    group by day
    having count(*) >= 10
),

day_slopes as (
    -- least squares of a DT's relative energy on its households' and industrial shares, across the DTs
    select
        day,
        y,
        h,
        i,
        (hy * ii - iy * hi) / nullif(hh * ii - hi * hi, 0) as household_slope,
        (iy * hh - hy * hi) / nullif(hh * ii - hi * hi, 0) as industrial_slope,
        y - h * (hy * ii - iy * hi) / nullif(hh * ii - hi * hi, 0)
        - i * (iy * hh - hy * hi) / nullif(hh * ii - hi * hi, 0) as intercept,
    from day_moments
),

day_factors as (
    -- the day's relative use of households, of industrial customers and of the others
    select
        day,
        least(greatest(intercept, 0.1), 3.0) as other_factor,
        least(greatest(intercept + household_slope, 0.1), 3.0) as household_factor,
        least(greatest(intercept + industrial_slope, 0.1), 3.0) as industrial_factor,
    from day_slopes
    where household_slope is not null
),

final as (
    select
        relative_daily.node_id,
        day_factors.*,
        relative_daily.h * day_factors.household_factor + relative_daily.i * day_factors.industrial_factor
        + (1 - relative_daily.h - relative_daily.i) * day_factors.other_factor as mix_factor,
    from relative_daily
    inner join day_factors on relative_daily.day = day_factors.day
)

select * from final
