-- one row per calendar month, meter and channel (key: period, meter_id, channel), for every meter with
-- an expected interval in the month, meters no snapshot lists included (role UNASSIGNED; they count in
-- no company figure). Intervals of the local calendar month, daylight saving days included.
-- Unrounded; quantities exact decimals.

-- materialized: table
with

meter_months as (
    select * from aggregates_int_meter_channels__monthly
),

final as (
    select
        -- period: calendar month of the intervals, 'YYYY-MM' (text)
        period,
        -- meter_id: the meter (text)
        meter_id,
        -- channel: ACTIVE_IMPORT, ACTIVE_EXPORT, REACTIVE_IMPORT or REACTIVE_EXPORT (text)
        channel,
        -- role: CUSTOMER, DT, FEEDER, BOUNDARY, or UNASSIGNED for a meter no meters snapshot lists (text)
        role,
        -- unit: kWh on the active channels, kvarh on the reactive ones (text)
        unit,
        -- expected_intervals: intervals expected in the month, from the channel's first to its last reading (count)
        expected_intervals,
        -- actual_intervals: intervals with an actual reading, corrected ones included (count)
        actual_intervals,
        -- upstream_estimated_intervals: intervals with a reading marked estimated upstream (count)
        upstream_estimated_intervals,
        -- estimated_intervals: intervals VEE estimated by interpolation or like-day (count)
        estimated_intervals,
        -- missing_intervals: intervals left without a value (count)
        missing_intervals,
        -- recorded_qty: sum of the delivered readings (actual, estimated upstream) before the multiplier (kWh or kvarh)
        recorded_qty,
        -- validated_qty: sum of every interval with a value after VEE, estimates included, x multiplier (kWh or kvarh)
        validated_qty,
        -- edited_intervals: the actual intervals whose reading a later delivery corrected (count)
        edited_intervals,
        -- estimated_qty: the part of validated_qty VEE estimated, x multiplier (kWh or kvarh)
        estimated_qty,
    from meter_months
    order by period, meter_id, channel
)

select * from final
