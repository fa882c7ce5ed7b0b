"""The day factors that shape the calendar spreads' first pass
(int_consumption__calendar_monthly_day_factors): twelve DTs of known customer mixes whose energy follows
known relative uses of households, industrial and other customers, the fit recomputed here with numpy's
least squares."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pytest

from etl.models import run_model

DAYS = [date(2025, 1, 1) + timedelta(days=k) for k in range(31)]
HOLIDAY = 14  # January 15: households use 1.2 times their usual, industry 0.4, the others 0.8
USE = {"RESIDENTIAL": 1.2, "INDUSTRIAL": 0.4, "COMMERCIAL": 0.8}
# households' and industrial shares of each DT's metered use; the commercial customers take the rest
MIX = [(0.9, 0.05), (0.8, 0.1), (0.7, 0.2), (0.6, 0.1), (0.5, 0.4), (0.4, 0.3)]
MIX += [(0.3, 0.6), (0.2, 0.2), (0.1, 0.8), (0.95, 0.0), (0.5, 0.0), (0.0, 0.9)]


def use_of_day(klass: str, day: int) -> float:
    weekly = {"RESIDENTIAL": 1.0, "INDUSTRIAL": 0.7 if day % 7 == 4 else 1.0, "COMMERCIAL": 1.0}[klass]
    return weekly * (USE[klass] if day == HOLIDAY else 1.0)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create table int_meters__current (meter_id varchar, role varchar)")
    con.execute(
        "create table int_customers__current (customer_id varchar, customer_class varchar, dt_id varchar)"
    )
    con.execute(
        "create table validated_register_consumption (meter_id varchar, customer_id varchar, "
        "register varchar, read_from timestamp, read_to timestamp, consumption_kwh decimal(38, 12))"
    )
    con.execute(
        "create table aggregates_int_energy_in__daily (node_id varchar, day date, kwh_in decimal(38, 12))"
    )
    for j, (h, i) in enumerate(MIX):
        dt = f"D{j:02d}"
        for klass, share in (("RESIDENTIAL", h), ("INDUSTRIAL", i), ("COMMERCIAL", 1 - h - i)):
            customer = f"{dt}-{klass}"
            con.execute("insert into int_meters__current values (?, 'CUSTOMER')", [customer])
            con.execute("insert into int_customers__current values (?, ?, ?)", [customer, klass, dt])
            con.execute(
                "insert into validated_register_consumption values "
                "(?, ?, 'TOTAL', '2025-01-01', '2025-02-01', ?)",
                [customer, customer, round(3100 * share, 6)],
            )
        for d, day in enumerate(DAYS):
            kwh = 100 * sum(
                share * use_of_day(k, d)
                for k, share in (("RESIDENTIAL", h), ("INDUSTRIAL", i), ("COMMERCIAL", 1 - h - i))
            )
            con.execute(
                "insert into aggregates_int_energy_in__daily values (?, ?, ?)", [dt, day, round(kwh, 9)]
            )
    run_model(con, "int_consumption__calendar_monthly_day_factors")
    return con


def expected() -> dict[date, tuple[float, float, float]]:
    """Each DT's energy against its mean over the 21 days either side, fitted by least squares on the mix."""
    metered = np.array([[round(3100 * s, 6) for s in (h, i, 1 - h - i)] for h, i in MIX])
    shares = metered[:, :2] / metered.sum(axis=1, keepdims=True)
    energy = np.array(
        [
            [round(100 * sum(s * use_of_day(k, d) for k, s in zip(USE, (h, i, 1 - h - i), strict=True)), 9)]
            for h, i in MIX
            for d in range(len(DAYS))
        ]
    ).reshape(len(MIX), len(DAYS))
    out = {}
    for d, day in enumerate(DAYS):
        lo, hi = max(0, d - 21), min(len(DAYS), d + 22)
        relative = energy[:, d] / energy[:, lo:hi].mean(axis=1)
        design = np.column_stack([np.ones(len(MIX)), shares])
        (other, household_slope, industrial_slope), *_ = np.linalg.lstsq(design, relative, rcond=None)
        out[day] = (other + household_slope, other + industrial_slope, other)
    return out


def test_the_day_factors_are_the_least_squares_fit_of_the_dts_relative_energy_on_their_mix(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = con.execute(
        "select distinct day, household_factor, industrial_factor, other_factor "
        "from int_consumption__calendar_monthly_day_factors order by day"
    ).fetchall()
    want = expected()
    assert [r[0] for r in rows] == DAYS
    for day, *factors in rows:
        assert factors == pytest.approx(want[day], rel=1e-9), day
    # the holiday: households up, industry down, as the DTs' energy says
    holiday = dict((r[0], r[1:]) for r in rows)[DAYS[HOLIDAY]]
    assert holiday[0] > 1.1 and holiday[1] < 0.5


def test_a_dt_s_mix_factor_weighs_the_day_factors_by_its_own_mix(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select node_id, household_factor, industrial_factor, other_factor, mix_factor "
        "from int_consumption__calendar_monthly_day_factors where day = ?",
        [DAYS[HOLIDAY]],
    ).fetchall()
    assert len(rows) == len(MIX)
    for node_id, household, industrial, other, mix in rows:
        h, i = MIX[int(node_id[1:])]
        assert mix == pytest.approx(h * household + i * industrial + (1 - h - i) * other, rel=1e-12)


def test_days_with_fewer_than_ten_dts_have_no_factors(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("delete from aggregates_int_energy_in__daily where node_id >= 'D09' and day = '2025-01-20'")
    run_model(con, "int_consumption__calendar_monthly_day_factors")
    days = {
        r[0]
        for r in con.execute(
            "select distinct day from int_consumption__calendar_monthly_day_factors"
        ).fetchall()
    }
    assert date(2025, 1, 20) not in days
    assert len(days) == len(DAYS) - 1
