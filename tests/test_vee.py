"""VEE models on hand-written raw rows in an in-memory DuckDB: every rule, with exact values."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D

import duckdb
import pytest

from etl.models import build, register_parquet
from etl.vee.run import INTERVAL_OUTPUTS, REGISTER_INDEX_COLUMNS, REGISTER_OUTPUTS, ensure_reading_index
from tests.lakefixtures import memory_connection, raw_table

T = datetime.fromisoformat

# A window around every reading of these tests: the models see the whole history, as in one month's run.
WHOLE_HISTORY = {
    "vee_from": T("2000-01-01"),
    "vee_to": T("2100-01-01"),
    "vee_read_from": T("2000-01-01"),
    "vee_read_to": T("2100-01-01"),
}


def build_interval_models(con: duckdb.DuckDBPyConnection) -> None:
    """Build every interval model over `raw_interval_reads` and `raw_meters` in `con`."""
    ensure_reading_index(con)
    build(con, ["int_interval_reads__validated", *INTERVAL_OUTPUTS], params=WHOLE_HISTORY)


def build_register_models(con: duckdb.DuckDBPyConnection) -> None:
    """Build every register model over `raw_register_reads` and `raw_meters` in `con`."""
    register_parquet(con, "validated_register_index", [], REGISTER_INDEX_COLUMNS)
    build(con, REGISTER_OUTPUTS)


def meter(meter_id: str, **overrides: object) -> dict:
    row = {
        "meter_id": meter_id,
        "role": "DT",
        "node_id": "DT-" + meter_id,
        "reading_mode": "INTERVAL",
        "multiplier": "40",
        "max_kw": "10",
        "register_digits": 6,
        "installed_on": "2025-01-01",
    }
    return row | overrides


def reading(
    meter_id: str,
    start: str,
    kwh: str | None,
    quality: str | None = "A",
    minutes: int = 60,
    **lineage: object,
) -> dict:
    return {
        "meter_id": meter_id,
        "interval_start": start,
        "interval_minutes": minutes,
        "kwh": kwh,
        "quality": quality,
    } | lineage


def run_intervals(meters: list[dict], batches: list[list[dict]]) -> duckdb.DuckDBPyConnection:
    """Build the interval models; batch i is delivered as ingest_seq 10 + i."""
    con = memory_connection()
    raw_table(con, "meters", meters, seq=1, snapshot_date=date(2025, 1, 1))
    for i, rows in enumerate(batches):
        raw_table(con, "interval_reads", rows, seq=10 + i)
    build_interval_models(con)
    return con


def validated(con: duckdb.DuckDBPyConnection, meter_id: str = "M1") -> list[tuple]:
    return con.execute(
        "select strftime(interval_start, '%d %H:%M'), recorded_kwh, quality, rule "
        "from int_interval_reads__validated where meter_id = ? order by interval_start",
        [meter_id],
    ).fetchall()


# -- interval reads ------------------------------------------------------------------------------


def test_short_gap_is_interpolated_to_the_last_decimal() -> None:
    con = run_intervals(
        [meter("M1")],
        [[reading("M1", "2025-09-01 00:00", "1.000000"), reading("M1", "2025-09-01 03:00", "2.000000")]],
    )
    assert validated(con) == [
        ("01 00:00", D("1.000000"), "ACTUAL", "AS_READ"),
        ("01 01:00", D("1.333333"), "ESTIMATED", "INTERPOLATED"),
        ("01 02:00", D("1.666667"), "ESTIMATED", "INTERPOLATED"),
        ("01 03:00", D("2.000000"), "ACTUAL", "AS_READ"),
    ]


def test_gap_of_four_is_interpolated_and_gap_of_five_is_not() -> None:
    rows = [
        reading("M1", "2025-09-10 00:00", "1.000000"),
        reading("M1", "2025-09-10 05:00", "6.000000"),  # gap of 4
        reading("M1", "2025-09-10 11:00", "1.000000"),  # gap of 5
    ]
    con = run_intervals([meter("M1")], [rows])
    got = validated(con)
    assert got[1:5] == [
        ("10 01:00", D("2.000000"), "ESTIMATED", "INTERPOLATED"),
        ("10 02:00", D("3.000000"), "ESTIMATED", "INTERPOLATED"),
        ("10 03:00", D("4.000000"), "ESTIMATED", "INTERPOLATED"),
        ("10 04:00", D("5.000000"), "ESTIMATED", "INTERPOLATED"),
    ]
    assert got[6:11] == [(f"10 {h:02d}:00", None, "MISSING", "NO_ESTIMATE") for h in range(6, 11)]


def test_long_gap_takes_the_actual_value_seven_days_earlier() -> None:
    week_before = [
        reading("M1", "2025-09-03 06:00", "0.700000"),
        reading("M1", "2025-09-03 07:00", "0.800000", quality="E"),  # not actual: no source
        # 08:00 not delivered: no source
        reading("M1", "2025-09-03 09:00", "0.900000", quality=None),  # NULL quality is actual
        reading("M1", "2025-09-03 10:00", "1.100000"),
    ]
    gap = [reading("M1", "2025-09-10 05:00", "2.000000"), reading("M1", "2025-09-10 11:00", "3.000000")]
    con = run_intervals([meter("M1")], [week_before + gap])
    got = [r for r in validated(con) if r[0] >= "10 05:00"]
    assert got == [
        ("10 05:00", D("2.000000"), "ACTUAL", "AS_READ"),
        ("10 06:00", D("0.700000"), "ESTIMATED", "LIKE_DAY"),
        ("10 07:00", None, "MISSING", "NO_ESTIMATE"),
        ("10 08:00", None, "MISSING", "NO_ESTIMATE"),
        ("10 09:00", D("0.900000"), "ESTIMATED", "LIKE_DAY"),
        ("10 10:00", D("1.100000"), "ESTIMATED", "LIKE_DAY"),
        ("10 11:00", D("3.000000"), "ACTUAL", "AS_READ"),
    ]
    lineage = con.execute(
        "select _source_file, _line_no from int_interval_reads__validated "
        "where interval_start = '2025-09-10 06:00'"
    ).fetchall()
    assert lineage == [("readings/interval_reads_000010.csv", 2)]


def test_upstream_estimate_is_kept_but_never_an_anchor() -> None:
    rows = [
        reading("M1", "2025-09-02 00:00", "4.000000", quality="E"),
        reading("M1", "2025-09-02 02:00", "6.000000"),
    ]
    con = run_intervals([meter("M1")], [rows])
    assert validated(con) == [
        ("02 00:00", D("4.000000"), "ESTIMATED_UPSTREAM", "UPSTREAM_ESTIMATE"),
        ("02 01:00", None, "MISSING", "NO_ESTIMATE"),
        ("02 02:00", D("6.000000"), "ACTUAL", "AS_READ"),
    ]


def test_spike_is_quarantined_and_its_interval_estimated() -> None:
    rows = [
        reading("M1", "2025-09-01 00:00", "2.000000"),
        reading("M1", "2025-09-01 01:00", "10.000001"),  # max_kw 10 over 60 minutes: 10 kWh at most
        reading("M1", "2025-09-01 02:00", "4.000000"),
        reading("M1", "2025-09-01 02:30", "5.000001", minutes=30),  # 5 kWh at most in 30 minutes
        reading("M1", "2025-09-01 03:00", "10.000000"),  # exactly the limit: accepted
    ]
    con = run_intervals([meter("M1")], [rows])
    assert validated(con)[:3] == [
        ("01 00:00", D("2.000000"), "ACTUAL", "AS_READ"),
        ("01 01:00", D("3.000000"), "ESTIMATED", "INTERPOLATED"),
        ("01 02:00", D("4.000000"), "ACTUAL", "AS_READ"),
    ]
    rejects = con.execute(
        "select strftime(interval_start, '%H:%M'), rule, reason, _line_no "
        "from int_interval_reads__rejected order by interval_start"
    ).fetchall()
    assert rejects == [
        (
            "01:00",
            "ABOVE_MAX_KW",
            "10.000001 kWh recorded in 60 minutes is above max_kw 10.0 kW of meter M1 (10.0 kWh at most)",
            3,
        ),
        (
            "02:30",
            "ABOVE_MAX_KW",
            "5.000001 kWh recorded in 30 minutes is above max_kw 10.0 kW of meter M1 (5.0 kWh at most)",
            5,
        ),
    ]


def test_no_max_kw_means_no_limit() -> None:
    con = run_intervals([meter("M1", max_kw=None)], [[reading("M1", "2025-09-01 00:00", "99999.000000")]])
    assert validated(con) == [("01 00:00", D("99999.000000"), "ACTUAL", "AS_READ")]


def test_readings_outside_the_installation_are_rejected_and_an_unknown_meter_is_unassigned() -> None:
    rows = [
        reading("M1", "2025-03-31 23:00", "1.000000"),  # before installed_on
        reading("M1", "2025-04-01 00:00", "1.000000"),
        reading("M1", "2025-04-30 23:00", "1.000000"),  # removed_on is the last day
        reading("M1", "2025-05-01 00:00", "1.000000"),
        # no snapshot lists GHOST: validated as UNASSIGNED, multiplier 1, no max_kw (99 kWh in an hour)
        reading("GHOST", "2025-04-01 00:00", "1.000000"),
        reading("GHOST", "2025-04-01 03:00", "99.000000"),
    ]
    con = run_intervals([meter("M1", installed_on="2025-04-01", removed_on="2025-04-30")], [rows])
    rejects = con.execute(
        "select meter_id, strftime(interval_start, '%m-%d %H:%M'), period, rule, reason "
        "from int_interval_reads__rejected order by _line_no"
    ).fetchall()
    assert rejects == [
        ("M1", "03-31 23:00", "2025-03", "OUTSIDE_INSTALLATION",
         "interval_start 2025-03-31 23:00:00 is outside the installation of meter M1 "
         "(2025-04-01 to 2025-04-30)"),
        ("M1", "05-01 00:00", "2025-05", "OUTSIDE_INSTALLATION",
         "interval_start 2025-05-01 00:00:00 is outside the installation of meter M1 "
         "(2025-04-01 to 2025-04-30)"),
    ]  # fmt: skip
    # the grid runs from the first to the last accepted reading only
    counts = con.execute(
        "select meter_id, role, count(*), min(interval_start), max(interval_start) "
        "from int_interval_reads__validated group by meter_id, role order by meter_id"
    ).fetchall()
    assert counts == [
        ("GHOST", "UNASSIGNED", 4, T("2025-04-01 00:00"), T("2025-04-01 03:00")),
        ("M1", "DT", 720, T("2025-04-01 00:00"), T("2025-04-30 23:00")),
    ]
    # 1 + (99 - 1) x i / 3 for the two hours between, multiplier 1
    assert validated(con, "GHOST") == [
        ("01 00:00", D("1.000000"), "ACTUAL", "AS_READ"),
        ("01 01:00", D("33.666667"), "ESTIMATED", "INTERPOLATED"),
        ("01 02:00", D("66.333333"), "ESTIMATED", "INTERPOLATED"),
        ("01 03:00", D("99.000000"), "ACTUAL", "AS_READ"),
    ]
    energy = con.execute(
        "select sum(energy_kwh) from int_interval_reads__validated where meter_id = 'GHOST'"
    ).fetchone()
    assert energy == (D("200.000000"),)


def test_duplicates_exact_repeat_kept_once_later_file_and_later_line_win() -> None:
    first = [
        reading("M1", "2025-09-01 00:00", "1.000000"),
        reading("M1", "2025-09-01 01:00", "2.000000"),
        reading("M1", "2025-09-01 02:00", "3.000000"),
        reading("M1", "2025-09-01 02:00", "3.500000"),  # same file, later line wins
    ]
    second = [
        reading("M1", "2025-09-01 00:00", "1.000000"),  # exact repeat
        reading("M1", "2025-09-01 01:00", "2.200000"),  # correction
    ]
    con = run_intervals([meter("M1")], [first, second])
    got = con.execute(
        "select strftime(interval_start, '%H:%M'), recorded_kwh, quality, rule, _source_file, _line_no "
        "from int_interval_reads__validated order by interval_start"
    ).fetchall()
    assert got == [
        ("00:00", D("1.000000"), "ACTUAL", "AS_READ", "readings/interval_reads_000011.csv", 2),
        (
            "01:00",
            D("2.200000"),
            "EDITED",
            "CORRECTED_BY_LATER_FILE",
            "readings/interval_reads_000011.csv",
            3,
        ),
        (
            "02:00",
            D("3.500000"),
            "EDITED",
            "CORRECTED_BY_LATER_LINE",
            "readings/interval_reads_000010.csv",
            5,
        ),
    ]


def test_edited_reading_anchors_an_interpolation() -> None:
    first = [reading("M1", "2025-09-01 00:00", "1.000000"), reading("M1", "2025-09-01 02:00", "9.000000")]
    second = [reading("M1", "2025-09-01 02:00", "3.000000")]
    con = run_intervals([meter("M1")], [first, second])
    assert validated(con) == [
        ("01 00:00", D("1.000000"), "ACTUAL", "AS_READ"),
        ("01 01:00", D("2.000000"), "ESTIMATED", "INTERPOLATED"),
        ("01 02:00", D("3.000000"), "EDITED", "CORRECTED_BY_LATER_FILE"),
    ]


def test_a_gap_is_counted_in_the_interval_length_of_the_reading_before_it() -> None:
    rows = [
        reading("M2", "2025-09-01 00:00", "1.000000", minutes=30),
        reading("M2", "2025-09-01 01:30", "4.000000", minutes=30),
    ]
    con = run_intervals([meter("M2")], [rows])
    assert validated(con, "M2") == [
        ("01 00:00", D("1.000000"), "ACTUAL", "AS_READ"),
        ("01 00:30", D("2.000000"), "ESTIMATED", "INTERPOLATED"),
        ("01 01:00", D("3.000000"), "ESTIMATED", "INTERPOLATED"),
        ("01 01:30", D("4.000000"), "ACTUAL", "AS_READ"),
    ]


def test_energy_is_recorded_times_multiplier_exactly() -> None:
    big = meter("M1", multiplier="123456.789012", max_kw=None)
    con = run_intervals([big], [[reading("M1", "2025-09-01 00:00", "999999999999.999999")]])
    got = con.execute("select energy_kwh, multiplier from int_interval_reads__validated").fetchall()
    assert got == [(D("123456789011999999.876543210988"), D("123456.789012"))]


def test_interval_in_utc_lands_in_the_local_month() -> None:
    con = memory_connection()
    local = con.execute(
        "select '2025-09-30T16:59:00+00:00'::timestamptz::timestamp, "
        "'2025-09-30T17:00:00+00:00'::timestamptz::timestamp"
    ).fetchone()
    assert local == (T("2025-09-30 23:59"), T("2025-10-01 00:00"))
    rows = [
        reading("M1", "2025-09-30 23:00", "1.000000"),
        reading("M1", local[1].isoformat(), "2.000000"),  # 17:00 UTC on the 30th
    ]
    con = run_intervals([meter("M1")], [rows])
    got = con.execute(
        "select period, meter_id, expected_intervals, recorded_kwh from int_interval_reads__summed_monthly "
        "order by period"
    ).fetchall()
    assert got == [("2025-09", "M1", 1, D("1.000000")), ("2025-10", "M1", 1, D("2.000000"))]


def test_meter_monthly_counts_and_energy() -> None:
    first = [
        reading("M1", "2025-09-30 20:00", "1.000000"),
        reading("M1", "2025-09-30 21:00", "2.000000", quality="E"),
        reading("M1", "2025-09-30 22:00", "3.000000"),
        # 23:00 and 00:00 missing, interpolated between 3 and 6 across the month boundary
        reading("M1", "2025-10-01 01:00", "6.000000"),
    ]
    second = [reading("M1", "2025-09-30 20:00", "1.500000")]
    con = run_intervals([meter("M1", multiplier="2")], [first, second])
    got = con.execute("select * from int_interval_reads__summed_monthly order by period").fetchall()
    assert got == [
        # recorded_kwh sums estimates too, delivered_kwh the delivered readings (1.5 + 2 + 3); the
        # reading index holds UTC instants (local time - 7 hours)
        (
            "2025-09", "M1", "ACTIVE_IMPORT", 4, 1, 1, 1, 1, 0,
            D("10.500000"), D("6.500000"), D("21.000000000000"), D("8.000000000000"),
            T("2025-09-30 13:00"), T("2025-09-30 15:00"), 60,
        ),
        (
            "2025-10", "M1", "ACTIVE_IMPORT", 2, 1, 0, 0, 1, 0,
            D("11.000000"), D("6.000000"), D("22.000000000000"), D("10.000000000000"),
            T("2025-09-30 18:00"), T("2025-09-30 18:00"), 60,
        ),
    ]  # fmt: skip


def test_current_meter_comes_from_the_newest_snapshot_listing_it() -> None:
    con = memory_connection()
    raw_table(con, "meters", [meter("M1", multiplier="1"), meter("M2", multiplier="1")], seq=1,
              snapshot_date=date(2025, 1, 1))  # fmt: skip
    raw_table(con, "meters", [meter("M1", multiplier="2"), meter("M1", multiplier="3")], seq=2,
              snapshot_date=date(2025, 6, 1))  # fmt: skip
    raw_table(con, "meters", [meter("M1", multiplier="4")], seq=3, snapshot_date=date(2025, 6, 1))
    raw_table(con, "meters", [meter("M1", multiplier="5")], seq=4, snapshot_date=date(2025, 3, 1))
    build(con, ["int_meters__current"])
    got = con.execute(
        "select meter_id, multiplier, snapshot_date from int_meters__current order by 1"
    ).fetchall()
    assert got == [("M1", D("4.000000"), date(2025, 6, 1)), ("M2", D("1.000000"), date(2025, 1, 1))]


# -- register reads ------------------------------------------------------------------------------


def customer_meter(meter_id: str, **overrides: object) -> dict:
    row = meter(meter_id, role="CUSTOMER", customer_id="PC03DH" + meter_id, node_id=None,
                reading_mode="REGISTER", multiplier="1", max_kw=None, register_digits=5)  # fmt: skip
    return row | overrides


def read(meter_id: str, at: str, index: str, read_type: str = "REGULAR", register: str = "TOTAL") -> dict:
    return {
        "meter_id": meter_id,
        "read_at": at,
        "register": register,
        "index_value": index,
        "read_type": read_type,
    }


def run_registers(meters: list[dict], batches: list[list[dict]]) -> duckdb.DuckDBPyConnection:
    con = memory_connection()
    raw_table(con, "meters", meters, seq=1, snapshot_date=date(2025, 1, 1))
    for i, rows in enumerate(batches):
        raw_table(con, "register_reads", rows, seq=10 + i)
    build_register_models(con)
    return con


def consumption(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select meter_id, register, strftime(read_from, '%m-%d'), strftime(read_to, '%m-%d'), period, "
        "consumption_kwh, rule from int_register_reads__paired order by meter_id, register, read_to"
    ).fetchall()


def test_register_consumption_times_multiplier_with_dedupe() -> None:
    reads = [
        read("C1", "2025-08-10 08:00", "1000.000000"),
        read("C1", "2025-09-10 08:00", "1150.500000"),
        read("C1", "2025-10-10 08:00", "1300.000000"),
        read("C1", "2025-09-10 08:00", "1150.500000", register="PEAK"),
    ]
    correction = [read("C1", "2025-10-10 08:00", "1290.000000")]
    con = run_registers([customer_meter("C1", multiplier="2")], [reads, correction])
    assert consumption(con) == [
        ("C1", "TOTAL", "08-10", "09-10", "2025-09", D("301.000000000000"), "INDEX_DIFFERENCE"),
        ("C1", "TOTAL", "09-10", "10-10", "2025-10", D("279.000000000000"), "INDEX_DIFFERENCE"),
    ]


def test_register_rollover_is_plausible_below_half_the_range() -> None:
    reads = [
        read("C1", "2025-08-10 08:00", "99950.000000"),
        read("C1", "2025-09-10 08:00", "20.000000"),  # rollover: 70 kWh
        read("C1", "2025-10-10 08:00", "10.000000"),  # 99990 kWh would be implausible
        read("C1", "2025-11-10 08:00", "120.000000"),
    ]
    con = run_registers([customer_meter("C1")], [reads])
    assert consumption(con) == [
        ("C1", "TOTAL", "08-10", "09-10", "2025-09", D("70.000000000000"), "ROLLOVER"),
        ("C1", "TOTAL", "09-10", "11-10", "2025-11", D("100.000000000000"), "INDEX_DIFFERENCE"),
    ]
    rejects = con.execute(
        "select meter_id, read_at, period, rule, reason from int_register_reads__rejected"
    ).fetchall()
    assert rejects == [
        ("C1", T("2025-10-10 08:00"), "2025-10", "INDEX_DOWN",
         "index 10.0 is below the previous index 20.0 of 2025-09-10 08:00:00 and a rollover at "
         "10^5 would mean 99990.0 kWh"),
    ]  # fmt: skip


def test_register_rollover_plausibility_uses_max_kw_and_hours() -> None:
    reads = [
        read("C1", "2025-09-01 00:00", "9990.000000"),
        read("C1", "2025-09-11 00:00", "100.000000"),  # 110 kWh in 240 h, max 1 kW: plausible
        read("C1", "2025-09-12 00:00", "50.000000"),  # 9950 kWh in 24 h: not
    ]
    con = run_registers([customer_meter("C1", register_digits=4, max_kw="1")], [reads])
    assert consumption(con) == [
        ("C1", "TOTAL", "09-01", "09-11", "2025-09", D("110.000000000000"), "ROLLOVER")
    ]
    assert con.execute("select rule from int_register_reads__rejected").fetchall() == [("INDEX_DOWN",)]


def test_meter_change_opens_a_new_sequence_without_a_jump() -> None:
    old = customer_meter("C1", removed_on="2025-09-15")
    new = customer_meter("C2", installed_on="2025-09-15", customer_id="PC03DHC1")
    reads = [
        read("C1", "2025-08-10 08:00", "5000.000000"),
        read("C1", "2025-09-15 09:00", "5200.000000", "METER_OUT"),
        read("C2", "2025-09-15 10:00", "0.000000", "METER_IN"),
        read("C2", "2025-10-10 08:00", "150.000000"),
    ]
    con = run_registers([old, new], [reads])
    got = con.execute(
        "select meter_id, customer_id, consumption_kwh, read_type_from, read_type_to "
        "from int_register_reads__paired order by read_to"
    ).fetchall()
    assert got == [
        ("C1", "PC03DHC1", D("200.000000000000"), "REGULAR", "METER_OUT"),
        ("C2", "PC03DHC1", D("150.000000000000"), "METER_IN", "REGULAR"),
    ]


def test_reinstalled_meter_id_does_not_bridge_out_and_in() -> None:
    reads = [
        read("C1", "2025-08-10 08:00", "5000.000000"),
        read("C1", "2025-08-20 08:00", "5100.000000", "METER_OUT"),
        read("C1", "2025-09-01 08:00", "10.000000", "METER_IN"),
        read("C1", "2025-09-10 08:00", "60.000000"),
    ]
    con = run_registers([customer_meter("C1")], [reads])
    assert [(r[3], r[5]) for r in consumption(con)] == [
        ("08-20", D("100.000000000000")),
        ("09-10", D("50.000000000000")),
    ]
    assert con.execute("select count(*) from int_register_reads__rejected").fetchone() == (0,)


def test_register_reads_of_unknown_meters_are_rejected() -> None:
    con = run_registers([customer_meter("C1")], [[read("NOPE", "2025-09-10 08:00", "1.000000")]])
    got = con.execute(
        "select meter_id, rule, reason, _source_file, _line_no from int_register_reads__rejected"
    )
    assert got.fetchall() == [
        (
            "NOPE",
            "UNKNOWN_METER",
            "meter NOPE is in no meters snapshot",
            "readings/register_reads_000010.csv",
            2,
        )
    ]


def test_sum_check_compares_register_and_interval_energy() -> None:
    con = run_intervals(
        [meter("M1", multiplier="2", max_kw=None)],
        [[reading("M1", f"2025-09-01 {h:02d}:00", "1.000000") for h in range(6)]],
    )
    raw_table(con, "register_reads", [
        read("M1", "2025-09-01 00:00", "100.000000"),
        read("M1", "2025-09-01 03:00", "103.000000"),  # 3 intervals x 1 kWh: equal
        read("M1", "2025-09-01 06:00", "110.000000"),  # 7 kWh against 3: beyond tolerance
    ], seq=30)  # fmt: skip
    build_register_models(con)
    con.execute("create view validated_interval_reads as select * from int_interval_reads__validated")
    con.execute("create view validated_register_consumption as select * from int_register_reads__paired")
    build(con, ["int_register_reads__sum_checked"])
    got = con.execute(
        "select strftime(read_to, '%H:%M'), register_energy_kwh, interval_energy_kwh, difference_kwh, "
        "is_within_tolerance, intervals_expected from int_register_reads__sum_checked order by read_to"
    ).fetchall()
    assert got == [
        ("03:00", D("6.000000000000"), D("6.000000000000"), D("0.000000000000"), True, 3),
        ("06:00", D("14.000000000000"), D("6.000000000000"), D("-8.000000000000"), False, 3),
    ]


@pytest.mark.parametrize(
    ("before", "after", "n", "expected"),
    [
        ("0.000001", "0.000002", 2, ["0.000001", "0.000002"]),  # 1.333.. and 1.666.. millionths
        ("0.000000", "0.000001", 1, ["0.000001"]),  # half a millionth rounds up
        ("7.000000", "1.000000", 3, ["5.500000", "4.000000", "2.500000"]),  # going down
    ],
)
def test_interpolation_rounds_half_up_to_six_decimals(
    before: str, after: str, n: int, expected: list[str]
) -> None:
    rows = [reading("M1", "2025-09-01 00:00", before), reading("M1", f"2025-09-01 {n + 1:02d}:00", after)]
    con = run_intervals([meter("M1")], [rows])
    assert [r[1] for r in validated(con)[1:-1]] == [D(x) for x in expected]


def test_drop_after_a_rejected_read_is_reported_not_counted() -> None:
    reads = [
        read("C1", "2025-07-10 08:00", "100.000000"),
        read("C1", "2025-08-10 08:00", "9000.000000"),  # a typo upward
        read("C1", "2025-09-10 08:00", "200.000000"),  # below 9000: rejected
        read("C1", "2025-10-10 08:00", "300.000000"),  # fine against 200, still below 9000
    ]
    con = run_registers([customer_meter("C1")], [reads])
    assert consumption(con) == [
        ("C1", "TOTAL", "07-10", "08-10", "2025-08", D("8900.000000000000"), "INDEX_DIFFERENCE")
    ]
    rejects = con.execute(
        "select period, rule, reason from int_register_reads__rejected order by read_at"
    ).fetchall()
    assert rejects == [
        ("2025-09", "INDEX_DOWN",
         "index 200.0 is below the previous index 9000.0 of 2025-08-10 08:00:00 and a rollover at 10^5 would "
         "mean 91200.0 kWh"),
        ("2025-10", "UNRESOLVED_DROP",
         "index 300.0 is below the index 9000.0 of 2025-08-10 08:00:00, the last accepted read, "
         "and a rollover is not plausible"),
    ]  # fmt: skip


def test_an_unassigned_meter_expects_no_interval_across_a_silence_of_more_than_31_days() -> None:
    rows = [
        # GHOST (no snapshot): 10 days between its first two readings, then 62 days of silence
        reading("GHOST", "2025-04-01 00:00", "1.000000"),
        reading("GHOST", "2025-04-11 00:00", "1.000000"),
        reading("GHOST", "2025-06-12 00:00", "1.000000"),
        # M1, listed: its installation bounds the grid, every hour between its readings is expected
        reading("M1", "2025-04-01 00:00", "1.000000"),
        reading("M1", "2025-06-12 00:00", "1.000000"),
    ]
    con = run_intervals([meter("M1", max_kw=None)], [rows])
    counts = con.execute(
        "select meter_id, period, count(*), count(*) filter (where rule = 'LIKE_DAY'), "
        "count(*) filter (where quality = 'MISSING') "
        "from int_interval_reads__validated group by all order by all"
    ).fetchall()
    # 8 April 00:00 copies 1 April 00:00 (like-day); every other hour between the readings is missing
    assert counts == [
        ("GHOST", "2025-04", 10 * 24 + 1, 1, 10 * 24 - 2),
        ("GHOST", "2025-06", 1, 0, 0),
        ("M1", "2025-04", 30 * 24, 1, 30 * 24 - 2),
        ("M1", "2025-05", 31 * 24, 0, 31 * 24),
        ("M1", "2025-06", 11 * 24 + 1, 0, 11 * 24),
    ]
