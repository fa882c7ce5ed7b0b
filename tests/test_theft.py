"""The generator's planted thefts and decoys (etl/synth/theft.py): who, how much, and what each changes."""

from __future__ import annotations

import numpy as np

from etl.synth.company import build_company
from etl.synth.intervals import dt_coefficients
from etl.synth.theft import BYPASS, EMPTY_HOUSE, ILLEGAL, SEASONAL, SOLAR, TAMPERED, THEFTS


def test_thefts_cluster_on_few_dts_and_change_what_the_meter_records_only() -> None:
    company = build_company(20_000, np.datetime64("2024-01"), np.datetime64("2024-12"), 7, 0.01)
    planted = company.planted
    assert planted is not None
    n = len(company.customers)
    counts = {k: int((planted.kind == k).sum()) for k in (BYPASS, TAMPERED, ILLEGAL, EMPTY_HOUSE, SOLAR)}
    assert counts == {BYPASS: round(n * 0.003), TAMPERED: round(n * 0.0015), ILLEGAL: round(n * 0.0005),
                      EMPTY_HOUSE: round(n * 0.002), SOLAR: round(n * 0.002)}  # fmt: skip
    thefts = np.isin(planted.kind, THEFTS)
    assert len(set(planted.dt[thefts].tolist())) <= round(len(company.network.dt_id) * 0.03)
    # a customer is planted once
    customers = planted.cust[planted.cust >= 0]
    assert len(set(customers.tolist())) == len(customers)

    last = company.n_months
    recorded = planted.recorded_factor(company, last)
    true = planted.true_factor(company, last)
    thieves = planted.cust[(planted.kind == BYPASS) | (planted.kind == TAMPERED)]
    started = (
        planted.start[(planted.kind == BYPASS) | (planted.kind == TAMPERED)]
        < company.axis.month_bounds(last)[0]
    )
    factors = planted.factor[(planted.kind == BYPASS) | (planted.kind == TAMPERED)]
    # a theft running all month records its factor; nobody else's meter records less than the use
    assert np.allclose(recorded[thieves[started]], factors[started])
    others = np.setdiff1d(np.arange(n), thieves)
    assert (recorded[others] == 1.0).all()
    assert (true[thieves] == 1.0).all()  # the DT carries a thief's whole use
    # decoys use less, and their meters record all of it
    decoys = planted.cust[np.isin(planted.kind, (EMPTY_HOUSE, SOLAR, SEASONAL))]
    assert (recorded[decoys] == 1.0).all()
    assert (true[decoys] <= 1.0).all() and (true[decoys] < 1.0).any()


def test_an_illegal_connection_loads_its_dt_from_its_start() -> None:
    company = build_company(20_000, np.datetime64("2024-01"), np.datetime64("2024-12"), 7, 0.01)
    planted = company.planted
    assert planted is not None
    rows = np.flatnonzero(planted.kind == ILLEGAL)
    last = company.n_months
    extra = planted.illegal_coefficients(company, last).sum(axis=1)
    running = planted.start[rows] < company.axis.month_bounds(last)[0]
    expected = np.bincount(
        planted.dt[rows[running]], weights=planted.factor[rows[running]], minlength=len(extra)
    )
    late = rows[~running]
    assert np.allclose(np.delete(extra, planted.dt[late]), np.delete(expected, planted.dt[late]))
    # the DT meters carry it: dt_coefficients add it to the customers' own load
    assert (dt_coefficients(company, last).sum(axis=1) >= extra).all()
