"""Planted revenue losses and their look-alikes: what inspectors find, and what fools a list of suspects.

Thefts (about 0.5 % of customers, on 3 % of the DTs: theft spreads in a neighbourhood): a **bypass** (the
meter records 15-50 % of the true use from some day on, the DT sees all of it), a **tampered meter**
(records 40-70 %), and **illegal connections** (a load of one to three households on a DT with no customer
behind it). Decoys, innocent but alike: **empty houses** (use falls to 2-8 % from some day on), **seasonal
businesses** (10 % of commercial customers, at 10-20 % for three to five calendar months every year),
**rooftop solar** (a household's grid use falls to 55-80 %: behind-the-meter self-use, no export) and the
**meter exchanges** the company already plants (events). Thefts change what the meter records, not what
the DT carries; decoys change the true use, so meter and DT agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from etl.contract import INSPECTION_RESULTS
from etl.synth.calendar import COMMERCIAL, DAY_SECONDS, N_CLASSES, RESIDENTIAL
from etl.synth.company import Company, stream

BYPASS, TAMPERED, ILLEGAL, EMPTY_HOUSE, SEASONAL, SOLAR, METER_EXCHANGE = range(7)
KINDS = (
    "BYPASS",
    "TAMPERED_METER",
    "ILLEGAL_CONNECTION",
    "EMPTY_HOUSE",
    "SEASONAL_BUSINESS",
    "ROOFTOP_SOLAR",
    "METER_EXCHANGE",
)
THEFTS = (BYPASS, TAMPERED, ILLEGAL)
# shares of all customers
SHARES = {BYPASS: 0.003, TAMPERED: 0.0015, ILLEGAL: 0.0005, EMPTY_HOUSE: 0.002, SOLAR: 0.002}
SEASONAL_SHARE_OF_COMMERCIAL = 0.10
THEFT_DT_SHARE = 0.03
RECORDED = {BYPASS: (0.15, 0.50), TAMPERED: (0.40, 0.70)}
KEPT = {EMPTY_HOUSE: (0.02, 0.08), SOLAR: (0.55, 0.80), SEASONAL: (0.10, 0.20)}
ILLEGAL_HOUSEHOLDS = (1.0, 3.0)  # an illegal load, in average households
VIOLATION = INSPECTION_RESULTS.index("VIOLATION")
NOT_ACCESSIBLE = INSPECTION_RESULTS.index("NOT_ACCESSIBLE")


@dataclass
class Planted:
    """One row per planted case; `cust` is -1 for an illegal connection (no customer)."""

    cust: np.ndarray
    dt: np.ndarray  # the customer's DT at the start, or the DT the illegal load hangs on
    kind: np.ndarray
    start: np.ndarray  # seconds: from when (seasonal: the first off-season month's start)
    start_month: np.ndarray  # axis month of `start`
    factor: np.ndarray  # thefts: share of true use recorded; decoys: share of usual use; illegal: base kWh
    off_months: np.ndarray  # seasonal: bit mask of calendar months (1-12) off season

    def __len__(self) -> int:
        return len(self.kind)

    def _month_share(self, company: Company, mi: int, rows: np.ndarray) -> np.ndarray:
        """Share of axis month `mi` from each row's start on (0 before, 1 after)."""
        ms, me = company.axis.month_bounds(mi)
        return np.clip((me - self.start[rows]) / (me - ms), 0.0, 1.0)

    def recorded_factor(self, company: Company, mi: int) -> np.ndarray:
        """Per customer: the share of the month's true use the meter records."""
        out = np.ones(len(company.customers))
        rows = np.flatnonzero((self.kind == BYPASS) | (self.kind == TAMPERED))
        after = self._month_share(company, mi, rows)
        out[self.cust[rows]] = 1.0 - (1.0 - self.factor[rows]) * after
        return out

    def true_factor(self, company: Company, mi: int) -> np.ndarray:
        """Per customer: the decoys' use against their usual level in axis month `mi`."""
        out = np.ones(len(company.customers))
        rows = np.flatnonzero((self.kind == EMPTY_HOUSE) | (self.kind == SOLAR))
        after = self._month_share(company, mi, rows)
        out[self.cust[rows]] = 1.0 - (1.0 - self.factor[rows]) * after
        seasonal = np.flatnonzero(self.kind == SEASONAL)
        month = int(company.axis.months[mi].astype(int) % 12)  # 0 = January
        off = (self.off_months[seasonal] >> month) & 1 == 1
        out[self.cust[seasonal[off]]] = self.factor[seasonal[off]]
        return out

    def illegal_coefficients(self, company: Company, mi: int) -> np.ndarray:
        """(DTs, classes): the illegal loads' base in axis month `mi`, as residential use."""
        rows = np.flatnonzero(self.kind == ILLEGAL)
        weight = self.factor[rows] * self._month_share(company, mi, rows)
        n_dt = len(company.network.dt_id)
        out = np.zeros((n_dt, N_CLASSES))
        out[:, RESIDENTIAL] = np.bincount(self.dt[rows], weights=weight, minlength=n_dt)
        return out

    def found(
        self,
        company: Company,
        customer: np.ndarray,
        at: np.ndarray,
        result: np.ndarray,
        violation: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inspections of `customer` at `at` (seconds): one that visits a running bypass or tampered meter
        finds it (VIOLATION, BYPASS or METER_TAMPERING) unless nobody was home (NOT_ACCESSIBLE)."""
        rows = np.flatnonzero((self.kind == BYPASS) | (self.kind == TAMPERED))
        if not len(rows):
            return result, violation
        case = np.full(len(company.customers), -1)
        case[self.cust[rows]] = rows
        k = case[customer]
        running = (k >= 0) & (at >= self.start[np.maximum(k, 0)]) & (result != NOT_ACCESSIBLE)
        result = np.where(running, VIOLATION, result)
        found_type = np.where(self.kind[np.maximum(k, 0)] == BYPASS, 0, 1)  # VIOLATION_TYPES order
        return result, np.where(running, found_type, violation)

    def labels(self, company: Company) -> pa.Table:
        """truth/theft_labels: one row per planted case, meter exchanges included."""
        ev = company.events
        c = company.customers
        change = ev.change_cust.astype(np.int64)
        cust = np.concatenate([self.cust, change])
        dt0 = c.dt0[np.maximum(cust, 0)]
        dt = np.where(cust >= 0, dt0, np.concatenate([self.dt, np.zeros(len(change), dtype=np.int64)]))
        kind = np.concatenate([self.kind, np.full(len(change), METER_EXCHANGE)])
        start = np.concatenate([self.start, ev.change_time.astype(np.int64)])
        ids = c.ids.to_pylist()
        factor = np.concatenate([self.factor, np.ones(len(change))])
        return pa.table(
            {
                "customer_id": pa.array([ids[i] if i >= 0 else None for i in cust], pa.string()),
                "dt_id": pa.array(company.network.dt_id[dt].tolist(), pa.string()),
                "kind": pa.array([KINDS[k] for k in kind], pa.string()),
                "is_theft": pa.array(np.isin(kind, THEFTS)),
                "starts_at": pa.array(start * 1_000_000, pa.timestamp("us")),
                "factor": pa.array(factor, pa.float64()),
            }
        )


def plant(company: Company) -> Planted:
    """Choose the planted cases among customers connected over the whole range (none in a company of under
    2 months). Theft clusters: it is planted on THEFT_DT_SHARE of the DTs, where it starts in one month
    and spreads over the next two; decoys start in any month from the range's second."""
    c = company.customers
    n = len(c)
    n_months = company.n_months
    n_dt = len(company.network.dt_id)
    rng = stream(company.seed, 70)
    first_ms, _ = company.axis.month_bounds(1)
    _, last_me = company.axis.month_bounds(n_months)
    steady = rng.permutation(np.flatnonzero((c.conn < first_ms) & (c.disc > last_me)))
    theft_dts = rng.choice(n_dt, max(1, round(n_dt * THEFT_DT_SHARE)), replace=False)
    dt_start = np.zeros(n_dt, dtype=np.int64)
    dt_start[theft_dts] = rng.integers(min(2, n_months), n_months + 1, len(theft_dts))
    parts: list[dict[str, np.ndarray]] = []
    used = np.zeros(0, dtype=np.int64)
    pool = steady[np.isin(c.dt0[steady], theft_dts)]
    for kind in (BYPASS, TAMPERED):
        count = min(len(pool), round(n * SHARES[kind]))
        chosen, pool = pool[:count], pool[count:]
        spread = rng.integers(0, 3, count)
        parts.append(
            _cases(company, rng, chosen, kind, np.minimum(dt_start[c.dt0[chosen]] + spread, n_months))
        )
        used = np.concatenate([used, chosen])
    n_illegal = round(n * SHARES[ILLEGAL])
    on_dt = rng.choice(theft_dts, n_illegal)
    illegal = _cases(company, rng, np.full(n_illegal, -1, dtype=np.int64), ILLEGAL, dt_start[on_dt])
    illegal["dt"] = on_dt.astype(np.int64)
    household_base = float(c.base[c.klass == RESIDENTIAL].mean()) if (c.klass == RESIDENTIAL).any() else 100.0
    illegal["factor"] = rng.uniform(*ILLEGAL_HOUSEHOLDS, n_illegal) * household_base
    parts.append(illegal)
    households = steady[c.klass[steady] == RESIDENTIAL]
    for kind in (EMPTY_HOUSE, SOLAR):
        free = households[~np.isin(households, used)]
        count = min(len(free), round(n * SHARES[kind]))
        start = rng.integers(min(2, n_months), n_months + 1, count)
        parts.append(_cases(company, rng, free[:count], kind, start))
        used = np.concatenate([used, free[:count]])
    business = steady[c.klass[steady] == COMMERCIAL]
    free = business[~np.isin(business, used)]
    count = min(len(free), round(len(business) * SEASONAL_SHARE_OF_COMMERCIAL))
    parts.append(_cases(company, rng, free[:count], SEASONAL, np.full(count, min(1, n_months))))
    if n_months < 2:
        parts = [{k: v[:0] for k, v in p.items()} for p in parts]
    return Planted(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def _cases(
    company: Company, rng: np.random.Generator, cust: np.ndarray, kind: int, start_month: np.ndarray
) -> dict[str, np.ndarray]:
    n = len(cust)
    ms = np.array([company.axis.month_bounds(int(m))[0] for m in start_month], dtype=np.int64)
    day = rng.integers(0, 28, n)
    lo, hi = RECORDED.get(kind) or KEPT.get(kind) or (1.0, 1.0)
    off = np.zeros(n, dtype=np.int64)
    if kind == SEASONAL:
        first = rng.integers(0, 12, n)
        length = rng.integers(3, 6, n)
        for k in range(5):
            off |= np.where(k < length, 1 << ((first + k) % 12), 0)
        day[:] = 0
    return {
        "cust": cust.astype(np.int64),
        "dt": company.customers.dt0[np.maximum(cust, 0)].astype(np.int64),
        "kind": np.full(n, kind, dtype=np.int64),
        "start": ms + day * DAY_SECONDS,
        "start_month": start_month.astype(np.int64),
        "factor": rng.uniform(lo, hi, n),
        "off_months": off,
    }
