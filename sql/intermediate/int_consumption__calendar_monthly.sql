-- one row per calendar month and customer with metered consumption in it (key: period, customer_id), for the
-- months of getvariable('calendar_periods'). A customer with a CUSTOMER interval meter takes the validated
-- energy of the month. A register customer's TOTAL consumption of each reading period (a pair of reads) is
-- spread over the days the period covers, in proportion to the daily energy of the customer's DT, less the
-- DT's loss, less the use of the DT's customers read on other days (their periods spread first by the DT's
-- energy scaled by their mix of customers against the DT's (int_consumption__calendar_monthly_day_factors);
-- after a customer's newest read at its last period's share of the DT; on the days with energy of a period
-- that starts before any, at its next period's share); by the DT's energy alone on days some customer's
-- reads do not reach; where the DT has no energy on some day of the period, of the DTs where the customer's
-- class is the most common class; where those lack a day too, evenly by time. Customer, DT, feeder and
-- region from the newest snapshots.
-- is_covered: the reads reach the month's end (or the last one removed the meter) and its start (or the
-- first one is a new meter's), and no reading period in the month starts before the first day of DT energy
-- at hand (its share of the month would be a guess). The reading periods that end in the month give
-- kwh_metered_read (TOTAL), tou_gap_kwh (|TOTAL - NORMAL - PEAK - OFFPEAK| beyond 3 register units, taken
-- as 3 x multiplier, summed over the periods with time-of-use registers; NULL without them) and
-- reading_tolerance_kwh (3 x multiplier per period: what register rounding can explain).

-- materialized: table
-- parameters: calendar_periods
with

months as (
    select
        period,
        strptime(period || '-01', '%Y-%m-%d') as month_start,
        strptime(period || '-01', '%Y-%m-%d') + interval 1 month as month_end,
    from (select unnest(getvariable('calendar_periods')) as period) as wanted
),

meters as (
    select * from int_meters__current
),

customers as (
    select * from int_customers__current
),

network as (
    select * from int_network__current
),

daily as (
    select * from aggregates_int_energy_in__daily
),

day_factors as (
    select * from int_consumption__calendar_monthly_day_factors
),

interval_energy as (
    -- customers read by interval meters: the calendar month is measured, nothing is spread
    select
        meter_monthly.period,
        meters.customer_id,
        sum(meter_monthly.energy_kwh) as kwh_calendar,
    from validated_meter_monthly as meter_monthly
    inner join meters on meter_monthly.meter_id = meters.meter_id
    where
        meters.role = 'CUSTOMER'
        and meters.customer_id is not null
        and meter_monthly.period in (select months.period from months)
    group by meter_monthly.period, meters.customer_id
),

pairs as (
    select
        consumption.customer_id,
        consumption.read_from,
        consumption.read_to,
        consumption.read_type_from,
        consumption.read_type_to,
        consumption.consumption_kwh,
        customers.customer_class,
        customers.dt_id,
    from validated_register_consumption as consumption
    inner join meters on consumption.meter_id = meters.meter_id
    left join customers on consumption.customer_id = customers.customer_id
    where consumption.register = 'TOTAL' and meters.role = 'CUSTOMER' and consumption.read_to > consumption.read_from
),

overlapping as (
    select
        months.period,
        months.month_start,
        months.month_end,
        pairs.*,
    from pairs
    inner join months on pairs.read_to > months.month_start and pairs.read_from < months.month_end
    anti join interval_energy
        on months.period = interval_energy.period and pairs.customer_id = interval_energy.customer_id
),

dominant_class as (
    select
        dt_id,
        arg_max(customer_class, customers_of_class order by customers_of_class, customer_class) as customer_class,
    from (
        select
            dt_id,
            customer_class,
            count(*) as customers_of_class,
        from customers
        where dt_id is not null
        group by dt_id, customer_class
    ) as classes
    group by dt_id
),

class_daily as (
    select
        dominant_class.customer_class,
        daily.day,
        sum(daily.kwh_in) as kwh_in,
    from daily
    inner join dominant_class on daily.node_id = dominant_class.dt_id
    group by dominant_class.customer_class, daily.day
),

windows as (
    -- customers of a DT share their reading days, so a DT has a few windows a month
    select distinct
        period,
        month_start,
        month_end,
        dt_id,
        customer_class,
        read_from,
        read_to,
    from overlapping
),

dt_spans as (
    -- the windows once per DT: its classes share the DT's profile
    select distinct
        period,
        month_start,
        month_end,
        dt_id,
        read_from,
        read_to,
    from windows
),

class_spans as (
    -- the windows once per class: a class's profile is the same on every DT
    select distinct
        period,
        month_start,
        month_end,
        customer_class,
        read_from,
        read_to,
    from windows
),

window_days as (
    select
        spans.*,
        days.day::date as day,
        epoch(least(spans.read_to, days.day + interval 1 day) - greatest(spans.read_from, days.day))
        / 86400.0 as day_part,
        days.day >= spans.month_start and days.day < spans.month_end as in_month,
    from dt_spans as spans,
        unnest(
            generate_series(
                date_trunc('day', spans.read_from), spans.read_to - interval 1 microsecond, interval 1 day
            )
        ) as days (day)
),

class_window_days as (
    select
        spans.*,
        days.day::date as day,
        epoch(least(spans.read_to, days.day + interval 1 day) - greatest(spans.read_from, days.day))
        / 86400.0 as day_part,
        days.day >= spans.month_start and days.day < spans.month_end as in_month,
    from class_spans as spans,
        unnest(
            generate_series(
                date_trunc('day', spans.read_from), spans.read_to - interval 1 microsecond, interval 1 day
            )
        ) as days (day)
),

dt_windows as (
    -- every reading period on a DT, whichever month it falls in: the customers it sums use the DT's energy
    -- on its days, the others' reading periods the rest
    select
        dt_id,
        read_from,
        read_to,
        sum(consumption_kwh::double) as kwh,
        coalesce(
            sum(consumption_kwh::double) filter (where customer_class = 'RESIDENTIAL')
            / nullif(sum(consumption_kwh::double), 0),
            0
        ) as household_share,
        coalesce(
            sum(consumption_kwh::double) filter (where customer_class = 'INDUSTRIAL')
            / nullif(sum(consumption_kwh::double), 0),
            0
        ) as industrial_share,
    from pairs
    where dt_id is not null
    group by dt_id, read_from, read_to
),

dt_window_days as (
    select
        dt_windows.*,
        days.day::date as day,
        epoch(least(dt_windows.read_to, days.day + interval 1 day) - greatest(dt_windows.read_from, days.day))
        / 86400.0 as day_part,
    from dt_windows,
        unnest(
            generate_series(
                date_trunc('day', dt_windows.read_from), dt_windows.read_to - interval 1 microsecond, interval 1 day
            )
        ) as days (day)
),

class_weighted as (
    -- the DT's energy of the day scaled by the period's mix of classes against the DT's
    select
        dt_window_days.*,
        daily.kwh_in::double * coalesce(
            (
                dt_window_days.household_share * day_factors.household_factor
                + dt_window_days.industrial_share * day_factors.industrial_factor
                + (1 - dt_window_days.household_share - dt_window_days.industrial_share) * day_factors.other_factor
            )
            / nullif(day_factors.mix_factor, 0),
            1
        ) as kwh_in,
    from dt_window_days
    left join daily on dt_window_days.dt_id = daily.node_id and dt_window_days.day = daily.day
    left join day_factors on dt_window_days.dt_id = day_factors.node_id and dt_window_days.day = day_factors.day
),

window_totals as (
    -- each reading period's DT energy over its days, and whether the DT has energy on every one
    select
        dt_id,
        read_from,
        read_to,
        sum(day_part * kwh_in) as kwh_in,
        count(kwh_in) filter (where kwh_in > 0) = count(*) as is_profiled,
    from class_weighted
    group by dt_id, read_from, read_to
),

first_pass as (
    -- each reading period spread by the DT's daily energy, where the DT has energy on every day of it
    select
        class_weighted.dt_id,
        class_weighted.read_from,
        class_weighted.read_to,
        class_weighted.day,
        class_weighted.kwh * class_weighted.day_part * class_weighted.kwh_in / window_totals.kwh_in as kwh_on_day,
        window_totals.is_profiled,
    from class_weighted
    inner join window_totals
        on
            class_weighted.dt_id = window_totals.dt_id
            and class_weighted.read_from = window_totals.read_from
            and class_weighted.read_to = window_totals.read_to
),

customer_reads as (
    select
        dt_id,
        customer_id,
        min(read_from) as first_read,
        max(read_to) as last_read,
        arg_min(read_type_from, read_from) as first_read_type,
        arg_max(read_type_to, read_to) as last_read_type,
    from pairs
    where dt_id is not null
    group by dt_id, customer_id
),

window_energy as (
    select
        dt_id,
        read_from,
        read_to,
        kwh_in,
    from window_totals
    where is_profiled
),

last_periods as materialized (
    -- each customer's newest reading periods, unless the newest read removed the meter (joined here on the
    -- customer first: on the read time alone, many customers read at the same instant would match)
    select
        customer_reads.dt_id,
        customer_reads.last_read,
        pairs.dt_id as pair_dt_id,
        pairs.read_from,
        pairs.read_to,
        pairs.consumption_kwh,
    from customer_reads
    inner join pairs
        on customer_reads.customer_id = pairs.customer_id and customer_reads.last_read = pairs.read_to
    where customer_reads.last_read_type <> 'METER_OUT'
),

tails as (
    -- after a customer's newest read (unless it removed the meter), its use goes on at its last reading
    -- period's share of the DT's energy until the newer reads arrive
    select
        last_periods.dt_id,
        last_periods.last_read,
        sum(last_periods.consumption_kwh::double / nullif(window_energy.kwh_in, 0)) as share,
    from last_periods
    inner join window_energy
        on
            last_periods.pair_dt_id = window_energy.dt_id
            and last_periods.read_from = window_energy.read_from
            and last_periods.read_to = window_energy.read_to
    group by last_periods.dt_id, last_periods.last_read
),

tail_days as (
    select
        tails.dt_id,
        daily.day,
        tails.share * daily.kwh_in::double
        * epoch(daily.day + interval 1 day - greatest(tails.last_read, daily.day)) / 86400.0 as kwh_on_day,
    from tails
    inner join daily on tails.dt_id = daily.node_id and daily.day + interval 1 day > tails.last_read
),

early_reads as (
    -- each customer's first reading period that starts before the DT energy at hand
    select
        dt_id,
        customer_id,
        min(read_to) as first_to,
    from pairs
    where dt_id is not null and read_from < (select min(daily.day) from daily)
    group by dt_id, customer_id
),

next_periods as materialized (
    -- the reading periods that follow each customer's early one (joined on the customer first, as above)
    select
        customer_reads.dt_id,
        customer_reads.first_to,
        pairs.dt_id as pair_dt_id,
        pairs.read_from,
        pairs.read_to,
        pairs.consumption_kwh,
    from early_reads as customer_reads
    inner join pairs
        on customer_reads.customer_id = pairs.customer_id and customer_reads.first_to = pairs.read_from
),

heads as (
    -- a customer's reading period that starts before the DT energy at hand: on its days with energy, its
    -- use is taken at the next reading period's share of the DT's energy
    select
        next_periods.dt_id,
        next_periods.first_to,
        sum(next_periods.consumption_kwh::double / nullif(window_energy.kwh_in, 0)) as share,
    from next_periods
    inner join window_energy
        on
            next_periods.pair_dt_id = window_energy.dt_id
            and next_periods.read_from = window_energy.read_from
            and next_periods.read_to = window_energy.read_to
    group by next_periods.dt_id, next_periods.first_to
),

head_days as (
    select
        heads.dt_id,
        daily.day,
        heads.share * daily.kwh_in::double
        * epoch(least(heads.first_to, daily.day + interval 1 day) - daily.day) / 86400.0 as kwh_on_day,
    from heads
    inner join daily on heads.dt_id = daily.node_id and heads.first_to > daily.day
),

others as (
    select
        dt_id,
        day,
        sum(kwh_on_day) as kwh_on_day,
    from (
        select
            dt_id,
            day,
            kwh_on_day,
        from first_pass
        where is_profiled
        union all
        select
            dt_id,
            day,
            kwh_on_day,
        from tail_days
        union all
        select
            dt_id,
            day,
            kwh_on_day,
        from head_days
    ) as parts
    group by dt_id, day
),

known_span as (
    -- the days on which every customer of the DT has its reading periods at hand (a new meter's first
    -- read and a removed meter's last do not shorten it)
    select
        dt_id,
        max(greatest(first_read, (select min(daily.day) from daily))) filter (
            where first_read_type <> 'METER_IN'
        ) as known_from,
        min(last_read) filter (where last_read_type <> 'METER_OUT') as known_to,
    from customer_reads
    group by dt_id
),

day_status as (
    select
        first_pass.dt_id,
        first_pass.day,
        bool_and(first_pass.is_profiled or first_pass.read_from < (select min(daily.day) from daily))
        and first_pass.day >= coalesce(any_value(known_span.known_from), first_pass.day) as is_known,
    from first_pass
    left join known_span on first_pass.dt_id = known_span.dt_id
    group by first_pass.dt_id, first_pass.day
),

dt_consumed as (
    -- the share of the DT's energy its customers' reading periods take, over the days known: the rest is
    -- the DT's loss, which a period's residual below leaves out
    select
        day_status.dt_id,
        sum(others.kwh_on_day) / nullif(sum(daily.kwh_in::double), 0) as consumed_share,
    from day_status
    inner join others on day_status.dt_id = others.dt_id and day_status.day = others.day
    inner join daily on day_status.dt_id = daily.node_id and day_status.day = daily.day
    where day_status.is_known
    group by day_status.dt_id
),

dt_profile as (
    -- the DT's energy of the day, less its loss, less the other reading periods' first-pass use: the
    -- profile of the customers that share one reading period; kept with the DT's energy itself, which a
    -- period with a day not known (above) uses instead
    select
        first_pass.dt_id,
        first_pass.read_from,
        first_pass.read_to,
        first_pass.day,
        daily.kwh_in::double as dt_kwh,
        greatest(
            coalesce(dt_consumed.consumed_share, 1) * daily.kwh_in::double
            - (others.kwh_on_day - first_pass.kwh_on_day),
            0.05 * daily.kwh_in::double
        ) as weight,
        day_status.is_known,
    from first_pass
    inner join others on first_pass.dt_id = others.dt_id and first_pass.day = others.day
    inner join daily on first_pass.dt_id = daily.node_id and first_pass.day = daily.day
    inner join day_status on first_pass.dt_id = day_status.dt_id and first_pass.day = day_status.day
    left join dt_consumed on first_pass.dt_id = dt_consumed.dt_id
    where first_pass.is_profiled
),

dt_window_weights as (
    select
        window_days.period,
        window_days.dt_id,
        window_days.read_from,
        window_days.read_to,
        count(*) as days,
        count(*) filter (where dt_profile.dt_kwh > 0) as dt_days,
        count(*) filter (where dt_profile.is_known) as known_days,
        sum(window_days.day_part * dt_profile.weight) filter (where window_days.in_month)
        / sum(window_days.day_part * dt_profile.weight) as residual_share,
        sum(window_days.day_part * dt_profile.dt_kwh) filter (where window_days.in_month)
        / sum(window_days.day_part * dt_profile.dt_kwh) as dt_share,
        coalesce(sum(window_days.day_part) filter (where window_days.in_month), 0)
        / sum(window_days.day_part) as time_share,
    from window_days
    left join dt_profile
        on
            window_days.dt_id = dt_profile.dt_id
            and window_days.read_from = dt_profile.read_from
            and window_days.read_to = dt_profile.read_to
            and window_days.day = dt_profile.day
    group by window_days.period, window_days.dt_id, window_days.read_from, window_days.read_to
),

class_window_weights as (
    select
        class_window_days.period,
        class_window_days.customer_class,
        class_window_days.read_from,
        class_window_days.read_to,
        count(*) filter (where class_daily.kwh_in > 0) as class_days,
        sum(class_window_days.day_part * class_daily.kwh_in::double) filter (where class_window_days.in_month)
        / sum(class_window_days.day_part * class_daily.kwh_in::double) as class_share,
    from class_window_days
    left join class_daily
        on class_window_days.customer_class = class_daily.customer_class and class_window_days.day = class_daily.day
    group by
        class_window_days.period,
        class_window_days.customer_class,
        class_window_days.read_from,
        class_window_days.read_to
),

window_weights as (
    select
        windows.period,
        windows.dt_id,
        windows.customer_class,
        windows.read_from,
        windows.read_to,
        dt_window_weights.days,
        dt_window_weights.dt_days,
        dt_window_weights.known_days,
        class_window_weights.class_days,
        dt_window_weights.residual_share,
        dt_window_weights.dt_share,
        class_window_weights.class_share,
        dt_window_weights.time_share,
    from windows
    inner join dt_window_weights
        on
            windows.period = dt_window_weights.period
            and windows.dt_id is not distinct from dt_window_weights.dt_id
            and windows.read_from = dt_window_weights.read_from
            and windows.read_to = dt_window_weights.read_to
    inner join class_window_weights
        on
            windows.period = class_window_weights.period
            and windows.customer_class is not distinct from class_window_weights.customer_class
            and windows.read_from = class_window_weights.read_from
            and windows.read_to = class_window_weights.read_to
),

window_shares as (
    select
        *,
        case
            when known_days = days then coalesce(residual_share, 0)
            when dt_days = days then coalesce(dt_share, 0)
            when class_days = days then coalesce(class_share, 0)
            else time_share
        end as month_share,
        case when dt_days = days then 1 when class_days = days then 2 else 3 end as profile_rank,
    from window_weights
),

spread as (
    select
        overlapping.period,
        overlapping.customer_id,
        sum(overlapping.consumption_kwh::double * window_shares.month_share) as kwh_calendar,
        max(window_shares.profile_rank) as profile_rank,
        count(*) as reading_periods,
        max(overlapping.read_to) >= min(overlapping.month_end)
        or arg_max(overlapping.read_type_to, overlapping.read_to) = 'METER_OUT' as reaches_end,
        (
            min(overlapping.read_from) <= min(overlapping.month_start)
            or arg_min(overlapping.read_type_from, overlapping.read_from) = 'METER_IN'
        )
        and min(overlapping.read_from) >= (select min(daily.day) from daily) as reaches_start,
    from overlapping
    inner join window_shares
        on
            overlapping.period = window_shares.period
            and overlapping.dt_id is not distinct from window_shares.dt_id
            and overlapping.customer_class is not distinct from window_shares.customer_class
            and overlapping.read_from = window_shares.read_from
            and overlapping.read_to = window_shares.read_to
    group by overlapping.period, overlapping.customer_id
),

consumed as (
    select
        period,
        customer_id,
        round(kwh_calendar, 6)::decimal(38, 6) as kwh_calendar,
        case profile_rank when 1 then 'DT' when 2 then 'CLASS' else 'TIME' end as profile,
        reading_periods,
        reaches_end and reaches_start as is_covered,
    from spread
    union all
    select
        period,
        customer_id,
        round(kwh_calendar, 6)::decimal(38, 6) as kwh_calendar,
        'INTERVAL' as profile,
        0 as reading_periods,
        true as is_covered,
    from interval_energy
),

read_pairs as (
    -- the reading periods that end in the month, each with its time-of-use registers
    select
        consumption.period,
        consumption.customer_id,
        consumption.meter_id,
        consumption.read_from,
        consumption.read_to,
        any_value(meters.multiplier) as multiplier,
        sum(consumption.consumption_kwh) filter (where consumption.register = 'TOTAL') as total_kwh,
        sum(consumption.consumption_kwh) filter (
            where consumption.register in ('NORMAL', 'PEAK', 'OFFPEAK')
        ) as tou_kwh,
    from validated_register_consumption as consumption
    inner join meters on consumption.meter_id = meters.meter_id
    where meters.role = 'CUSTOMER' and consumption.period in (select months.period from months)
    group by
        consumption.period, consumption.customer_id, consumption.meter_id, consumption.read_from, consumption.read_to
),

read_in_month as (
    select
        period,
        customer_id,
        sum(total_kwh) as kwh_metered_read,
        sum(greatest(abs(total_kwh - tou_kwh) - 3 * multiplier, 0)) as tou_gap_kwh,
        sum(3 * multiplier) as reading_tolerance_kwh,
    from read_pairs
    group by period, customer_id
),

final as (
    select
        consumed.period,
        consumed.customer_id,
        customers.dt_id,
        network.parent_id as feeder_id,
        coalesce(customers.region_code, 'UNKNOWN') as region_code,
        coalesce(customers.customer_class, 'UNKNOWN') as customer_class,
        consumed.kwh_calendar,
        consumed.profile,
        consumed.reading_periods::bigint as reading_periods,
        consumed.is_covered,
        read_in_month.kwh_metered_read::decimal(38, 12) as kwh_metered_read,
        read_in_month.tou_gap_kwh::decimal(38, 12) as tou_gap_kwh,
        read_in_month.reading_tolerance_kwh::decimal(38, 6) as reading_tolerance_kwh,
        customers.disconnected_on,
    from consumed
    left join customers on consumed.customer_id = customers.customer_id
    left join read_in_month
        on consumed.period = read_in_month.period and consumed.customer_id = read_in_month.customer_id
    left join network on customers.dt_id = network.node_id and network.node_type = 'DT'
)

select * from final
