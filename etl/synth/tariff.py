"""The EVN retail tariff (DOMAIN.md) with its price versions, and the bill lines it produces.

Prices are whole dong per kWh, excluding VAT. The 2024-10-11 residential prices and the 2025-05-10
prices are DOMAIN.md's; every other version is the next one divided by its increase (rounded half up):
1.048 for 2024-10-11 (time of use and flat), 1.048 for 2023-11-09 (EVN's real step was 4.5%, the
brief asks for 1.048), 1.03 for 2023-05-04, and 2019-03-20 for older dates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etl.contract import COMPONENTS
from etl.synth.calendar import COMMERCIAL, INDUSTRIAL, PUBLIC_ADMIN

VAT_PERCENT = 8

BLOCK_KIND = "BLOCK"
TOU_KIND = "TOU"
FLAT_KIND = "FLAT"

# code: (customer class index, kind, 2025-05-10 prices). TOU prices are (NORMAL, PEAK, OFFPEAK).
_TARIFFS: dict[str, tuple[int, str, tuple[int, ...]]] = {
    "SH": (0, BLOCK_KIND, (1984, 2050, 2380, 2998, 3350, 3460)),
    "KD-22": (COMMERCIAL, TOU_KIND, (2887, 5025, 1609)),
    "KD-6": (COMMERCIAL, TOU_KIND, (3108, 5202, 1829)),
    "KD-LV": (COMMERCIAL, TOU_KIND, (3152, 5422, 1918)),
    "SX-110": (INDUSTRIAL, TOU_KIND, (1811, 3266, 1146)),
    "SX-22": (INDUSTRIAL, TOU_KIND, (1833, 3398, 1190)),
    "SX-6": (INDUSTRIAL, TOU_KIND, (1899, 3508, 1234)),
    "SX-LV": (INDUSTRIAL, TOU_KIND, (1987, 3640, 1300)),
    "BV-6": (PUBLIC_ADMIN, FLAT_KIND, (1940,)),  # hospitals and schools, 6 kV and above
    "BV-LV": (PUBLIC_ADMIN, FLAT_KIND, (2072,)),
    "HC-6": (PUBLIC_ADMIN, FLAT_KIND, (2138,)),  # public lighting and administration, 6 kV and above
    "HC-LV": (PUBLIC_ADMIN, FLAT_KIND, (2226,)),
    # Not in DOMAIN.md: irrigation at the industrial below-6-kV normal price, other uses at the
    # public-administration below-6-kV price.
    "NN-LV": (4, FLAT_KIND, (1987,)),
    "KH-LV": (5, FLAT_KIND, (2226,)),
}
_RESIDENTIAL_2024 = (1893, 1956, 2271, 2860, 3197, 3302)

TARIFF_CODES: tuple[str, ...] = tuple(_TARIFFS)
TARIFF_CLASS = np.array([v[0] for v in _TARIFFS.values()], dtype=np.int8)
TARIFF_KIND: tuple[str, ...] = tuple(v[1] for v in _TARIFFS.values())
CODE_INDEX = {code: i for i, code in enumerate(TARIFF_CODES)}

# Validity starts, oldest first; each version runs to the day before the next one starts.
VERSION_STARTS = np.array(
    ["2019-03-20", "2023-05-04", "2023-11-09", "2024-10-11", "2025-05-10"], dtype="datetime64[D]"
)
_STEP_DOWN = (1.03, 1.03, 1.048, 1.048)  # price of version v = price of v + 1 / _STEP_DOWN[v]

BLOCK_WIDTHS = np.array([50, 50, 100, 100, 100], dtype=np.int64)  # BLOCK_6 has no upper bound
COMP_BLOCK_1 = COMPONENTS.index("BLOCK_1")
COMP_FLAT = COMPONENTS.index("FLAT")
# Component indices in register and time-of-use bucket order (NORMAL, PEAK, OFFPEAK = 0, 1, 2).
TOU_COMPONENTS = np.array([COMPONENTS.index(c) for c in ("NORMAL", "PEAK", "OFFPEAK")], dtype=np.int8)


def round_half_up(numerator: np.ndarray, denominator: int | np.ndarray) -> np.ndarray:
    """numerator / denominator rounded to the nearest integer, halves away from zero (int64, exact)."""
    num = np.asarray(numerator, dtype=np.int64)
    den = np.asarray(denominator, dtype=np.int64)
    q = (2 * np.abs(num) + den) // (2 * den)
    return np.sign(num) * q


def _price_table() -> np.ndarray:
    """prices[version, tariff, component] in whole dong; 0 where a tariff has no such component."""
    n_versions = len(VERSION_STARTS)
    prices = np.zeros((n_versions, len(TARIFF_CODES), len(COMPONENTS)), dtype=np.int64)
    for t, (_, kind, latest) in enumerate(_TARIFFS.values()):
        comps = _components_of(kind)
        prices[-1, t, comps] = latest
        if kind == BLOCK_KIND:
            prices[-2, t, comps] = _RESIDENTIAL_2024
        else:
            prices[-2, t, comps] = round_half_up(np.array(latest) * 1000, 1048)
        for v in range(n_versions - 3, -1, -1):
            step = int(round(_STEP_DOWN[v] * 1000))
            prices[v, t, comps] = round_half_up(prices[v + 1, t, comps] * 1000, step)
    return prices


def _components_of(kind: str) -> np.ndarray:
    if kind == BLOCK_KIND:
        return np.arange(COMP_BLOCK_1, COMP_BLOCK_1 + 6)
    if kind == TOU_KIND:
        return TOU_COMPONENTS.astype(np.int64)
    return np.array([COMP_FLAT])


PRICES = _price_table()


def version_of(days: np.ndarray) -> np.ndarray:
    """Index of the price version in force on each day (datetime64[D] or days since 1970)."""
    d = np.asarray(days).astype("datetime64[D]")
    return np.searchsorted(VERSION_STARTS, d, side="right") - 1


@dataclass(frozen=True)
class TariffRow:
    tariff_code: str
    customer_class: int
    component: str
    block_from_kwh: int | None
    block_to_kwh: int | None
    price_vnd_per_kwh: int
    valid_from: np.datetime64
    valid_to: np.datetime64 | None


def tariff_rows(known_on: np.datetime64) -> list[TariffRow]:
    """Every tariff row whose version started on or before `known_on` (valid_to: the last day, inclusive)."""
    rows = []
    known = [v for v in range(len(VERSION_STARTS)) if VERSION_STARTS[v] <= known_on]
    for v in known:
        valid_to = VERSION_STARTS[v + 1] - 1 if v + 1 in known else None
        for t, code in enumerate(TARIFF_CODES):
            for c in _components_of(TARIFF_KIND[t]):
                block = int(c) - COMP_BLOCK_1 if TARIFF_KIND[t] == BLOCK_KIND else None
                bounds = np.concatenate([[0], np.cumsum(BLOCK_WIDTHS)])
                rows.append(
                    TariffRow(
                        tariff_code=code,
                        customer_class=int(TARIFF_CLASS[t]),
                        component=COMPONENTS[int(c)],
                        block_from_kwh=int(bounds[block]) if block is not None else None,
                        block_to_kwh=int(bounds[block + 1]) if block is not None and block < 5 else None,
                        price_vnd_per_kwh=int(PRICES[v, t, c]),
                        valid_from=VERSION_STARTS[v],
                        valid_to=valid_to,
                    )
                )
    return rows


@dataclass
class Lines:
    """Bill lines as parallel arrays; kWh in hundredths (centi-kWh), money in whole dong."""

    bill: np.ndarray  # index of the bill the line belongs to
    component: np.ndarray
    centi_kwh: np.ndarray
    price: np.ndarray
    amount: np.ndarray
    vat: np.ndarray

    def __len__(self) -> int:
        return len(self.bill)


def money(centi_kwh: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amount (kWh x price, whole dong, halves away from zero) and 8% VAT on it (whole dong)."""
    amount = round_half_up(centi_kwh * price, 100)
    return amount, round_half_up(amount * VAT_PERCENT, 100)


def bill_lines(
    tariff: np.ndarray, start_day: np.ndarray, end_day: np.ndarray, centi_kwh: np.ndarray
) -> Lines:
    """Price every bill: one line per component (and per price version when prices change inside it).

    `centi_kwh` is (bills, 4): TOTAL, NORMAL, PEAK, OFFPEAK registers. Residential blocks are scaled by
    days billed / days of the month the reading period starts in (whole kWh, halves up); a price change
    inside the period splits the kWh (and the block sizes) in proportion to days.
    """
    start_day = start_day.astype(np.int64)
    end_day = end_day.astype(np.int64)
    days = np.maximum(end_day - start_day, 1)
    v_start = version_of(start_day)
    v_end = version_of(end_day - 1)
    change = VERSION_STARTS.astype(np.int64)[v_end]
    split = v_end > v_start
    days_old = np.where(split, change - start_day, days)
    days_new = days - days_old
    kind = np.array(TARIFF_KIND)[tariff]
    parts = []
    for mask, builder in (
        (kind == BLOCK_KIND, _block_parts),
        (kind == TOU_KIND, _tou_parts),
        (kind == FLAT_KIND, _flat_parts),
    ):
        idx = np.flatnonzero(mask)
        if len(idx):
            parts.append(builder(idx, start_day, days, days_old, days_new, centi_kwh))
    bill = np.concatenate([p[0] for p in parts])
    part = np.concatenate([p[1] for p in parts])
    comp = np.concatenate([p[2] for p in parts])
    qty = np.concatenate([p[3] for p in parts])
    order = np.lexsort((comp, part, bill))
    bill, part, comp, qty = bill[order], part[order], comp[order], qty[order]
    version = np.where(part == 0, v_start[bill], v_end[bill])
    price = PRICES[version, tariff[bill], comp]
    amount, vat = money(qty, price)
    return Lines(
        bill=bill, component=comp.astype(np.int8), centi_kwh=qty, price=price, amount=amount, vat=vat
    )


def _split(total: np.ndarray, days_old: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    old = round_half_up(total * days_old, days)
    return old, total - old


def _emit(idx: np.ndarray, qty: np.ndarray, comps: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, ...]:
    """Lines of a (bills, parts, components) quantity array where `keep` is true."""
    b, p, c = np.nonzero(keep)
    return idx[b], p.astype(np.int8), comps[c], qty[b, p, c]


def _block_parts(idx, start_day, days, days_old, days_new, centi_kwh) -> tuple[np.ndarray, ...]:
    kwh = centi_kwh[idx, 0] // 100  # household registers count whole kWh
    old, new = _split(kwh, days_old[idx], days[idx])
    month_days = _days_of_month(start_day[idx])
    qty = np.zeros((len(idx), 2, 6), dtype=np.int64)
    for p, (k, d) in enumerate(((old, days_old[idx]), (new, days_new[idx]))):
        widths = round_half_up(BLOCK_WIDTHS[None, :] * d[:, None], month_days[:, None])
        upper = np.cumsum(widths, axis=1)
        lower = np.concatenate([np.zeros((len(idx), 1), dtype=np.int64), upper], axis=1)
        caps = np.concatenate([widths, np.full((len(idx), 1), np.iinfo(np.int64).max // 4)], axis=1)
        qty[:, p, :] = np.clip(k[:, None] - lower, 0, caps)
    keep = qty > 0
    empty = ~keep.any(axis=(1, 2))
    keep[empty, 0, 0] = True  # a bill with no consumption still has its first block line, at 0 kWh
    comps = np.arange(COMP_BLOCK_1, COMP_BLOCK_1 + 6, dtype=np.int8)
    bills, parts, cs, q = _emit(idx, qty, comps, keep)
    return bills, parts, cs, q * 100


def _tou_parts(idx, start_day, days, days_old, days_new, centi_kwh) -> tuple[np.ndarray, ...]:
    qty = np.zeros((len(idx), 2, 3), dtype=np.int64)
    for r in range(3):
        qty[:, 0, r], qty[:, 1, r] = _split(centi_kwh[idx, 1 + r], days_old[idx], days[idx])
    keep = np.zeros_like(qty, dtype=bool)
    keep[:, 0, :] = days_old[idx, None] > 0
    keep[:, 1, :] = days_new[idx, None] > 0
    return _emit(idx, qty, TOU_COMPONENTS, keep)


def _flat_parts(idx, start_day, days, days_old, days_new, centi_kwh) -> tuple[np.ndarray, ...]:
    qty = np.zeros((len(idx), 2, 1), dtype=np.int64)
    qty[:, 0, 0], qty[:, 1, 0] = _split(centi_kwh[idx, 0], days_old[idx], days[idx])
    keep = np.zeros_like(qty, dtype=bool)
    keep[:, 0, 0] = days_old[idx] > 0
    keep[:, 1, 0] = days_new[idx] > 0
    return _emit(idx, qty, np.array([COMP_FLAT], dtype=np.int8), keep)


def _days_of_month(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    return ((m + 1).astype("datetime64[D]") - m.astype("datetime64[D]")).astype(np.int64)
