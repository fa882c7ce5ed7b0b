"""The company's shape and its scheduled changes: regions, network, customers, their meters, events.

Everything here is decided once, up front, from the seed; the monthly generators only read it.
Sizes scale with the customer count: ~4,000 customers a feeder, ~100 a distribution transformer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.synth import people
from etl.synth.calendar import (
    AGRICULTURE,
    COMMERCIAL,
    DAY_SECONDS,
    INDUSTRIAL,
    N_CLASSES,
    OTHER,
    PUBLIC_ADMIN,
    RESIDENTIAL,
    Axis,
    Shapes,
    days_in_month,
    make_axis,
    make_shapes,
    seconds,
)
from etl.synth.tariff import CODE_INDEX

if TYPE_CHECKING:
    from etl.synth.theft import Planted

NEVER = np.iinfo(np.int64).max // 2  # "not yet": a disconnection or removal that has not happened

# District power units of PC Quang Tri, largest first (small companies keep the first few).
REGIONS = (
    ("DH", "TP Đông Hà", ("Phường 1", "Phường 5", "Đông Lương", "Đông Thanh", "Đông Giang", "Đông Lễ")),
    ("VL", "huyện Vĩnh Linh", ("Hồ Xá", "Vĩnh Giang", "Vĩnh Thủy", "Vĩnh Long", "Vĩnh Tú", "Bến Quan")),
    (
        "TP",
        "huyện Triệu Phong",
        ("Ái Tử", "Triệu Thành", "Triệu Long", "Triệu Độ", "Triệu Ái", "Triệu Giang"),
    ),
    ("HL", "huyện Hải Lăng", ("Diên Sanh", "Hải Ba", "Hải Quy", "Hải Thượng", "Hải Phong", "Hải Chánh")),
    ("GL", "huyện Gio Linh", ("Gio Linh", "Gio An", "Gio Mai", "Gio Sơn", "Cửa Việt", "Gio Châu")),
    ("HH", "huyện Hướng Hóa", ("Khe Sanh", "Tân Hợp", "Hướng Tân", "Tân Liên", "Hướng Phùng", "Tân Thành")),
    ("CL", "huyện Cam Lộ", ("Cam Lộ", "Cam Thủy", "Cam Hiếu", "Cam Thành", "Cam Tuyền", "Cam Chính")),
    ("QT", "thị xã Quảng Trị", ("Phường 2", "Phường 3", "An Đôn", "Hải Lệ", "Phường 1", "Phường An Đôn")),
    ("DK", "huyện Đakrông", ("Krông Klang", "Mò Ó", "Hướng Hiệp", "Ba Lòng", "Tà Rụt", "A Ngo")),
    ("LB", "thị trấn Lao Bảo", ("Lao Bảo", "Tân Long", "Tân Lập", "Tân Thuận", "Thuận", "Thanh")),
)
REGION_WEIGHTS = np.array([0.18, 0.13, 0.12, 0.12, 0.11, 0.10, 0.08, 0.06, 0.05, 0.05])
SUBSTATIONS = ("Đông Hà", "Vĩnh Linh", "Hải Lăng", "Lao Bảo", "Gio Linh", "Khe Sanh")

# Share of customers by count, and of kWh (DOMAIN.md), per class.
COUNT_SHARE = np.array([0.930, 0.046, 0.006, 0.009, 0.006, 0.003])
KWH_SHARE = np.array([0.455, 0.075, 0.385, 0.043, 0.030, 0.012])
SPREAD = np.array([0.65, 1.10, 1.40, 0.90, 0.90, 0.80])  # log-normal sigma of base consumption
# kWh per customer in an average month of 2024, so that the full company sells ~181 M kWh/month in 2025.
KWH_PER_CUSTOMER_MONTH = 348.0
RESIDENTIAL_CAP = 2500.0

CASHLESS_CHANNELS = ("BANK_TRANSFER", "AUTO_DEBIT", "E_WALLET", "BANKING_APP", "CARD", "OTHER_CASHLESS")
HOUSEHOLD_CASHLESS_MIX = np.array([0.15, 0.12, 0.22, 0.33, 0.05, 0.13])
BUSINESS_CASHLESS_MIX = np.array([0.70, 0.10, 0.00, 0.20, 0.00, 0.00])
CASH_CHANNELS = ("CASH_COUNTER", "CASH_COLLECTOR")


def stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream per purpose, so that one part changing never shifts another."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


@dataclass
class Network:
    region_codes: list[str]
    region_districts: list[str]
    region_communes: list[tuple[str, ...]]
    boundary_id: np.ndarray
    boundary_name: np.ndarray
    feeder_id: np.ndarray
    feeder_name: np.ndarray
    feeder_region: np.ndarray
    feeder_boundary: np.ndarray
    dt_id: np.ndarray
    dt_name: np.ndarray
    dt_feeder: np.ndarray  # sorted: DTs of a feeder are contiguous
    dt_region: np.ndarray
    dt_route_day: np.ndarray  # households on the DT are read on this day of every month
    dt_minutes: np.ndarray  # interval length of the DT meter
    dt_loss: np.ndarray
    feeder_loss: np.ndarray
    boundary_loss: np.ndarray


@dataclass
class Customers:
    n_initial: int
    ids: pa.Array  # customer_id
    klass: np.ndarray
    tariff: np.ndarray
    base: np.ndarray  # kWh in an average month of 2024
    dt0: np.ndarray
    conn: np.ndarray  # seconds; customers after n_initial connect inside the range
    disc: np.ndarray  # seconds, NEVER while connected
    tou: np.ndarray
    reads: np.ndarray  # regular reads a month
    read_day: np.ndarray  # first reading day of the month of time-of-use customers
    mult: np.ndarray
    scale: np.ndarray  # index units per kWh of register: 1 (whole kWh) or 100 (hundredths)
    cash_u: np.ndarray  # pays cashless once the month's cashless share exceeds this
    cash_channel: np.ndarray
    cashless_channel: np.ndarray
    name: pa.Array
    address: pa.Array
    phone: pa.Array

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class CustomerMeters:
    """One row per register meter installation; a meter change adds a row."""

    meter_id: pa.Array
    cust: np.ndarray
    installed: np.ndarray  # seconds
    removed: np.ndarray  # seconds, NEVER while installed
    digits: np.ndarray
    start_units: np.ndarray  # (meters, 4) index units at installation: TOTAL, NORMAL, PEAK, OFFPEAK
    current0: np.ndarray  # per customer: the meter installed first


@dataclass
class Events:
    """Moves take effect on the first day of `move_month`; meter changes at `change_time`."""

    move_cust: np.ndarray
    move_month: np.ndarray
    move_dt: np.ndarray
    change_cust: np.ndarray
    change_time: np.ndarray
    change_new: np.ndarray
    rollover_meters: np.ndarray
    event_months: list[int]


@dataclass
class Company:
    seed: int
    fault_rate: float
    axis: Axis
    shapes: Shapes
    network: Network
    customers: Customers
    meters: CustomerMeters
    events: Events
    planted: Planted | None = None  # thefts and decoys (etl/synth/theft.py), set by build_company

    @property
    def n_months(self) -> int:
        """Months in the range (axis month 0 is the opening month before it)."""
        return len(self.axis.months) - 1

    def dt_in_month(self, mi: int) -> np.ndarray:
        """Each customer's distribution transformer during axis month `mi`."""
        dt = self.customers.dt0.copy()
        ev = self.events
        moved = ev.move_month <= mi
        dt[ev.move_cust[moved]] = ev.move_dt[moved]
        return dt

    def monthly_factor(self, mi: int) -> np.ndarray:
        """Each customer's own level in month `mi` (log-normal, sd 10%) on top of the class shape."""
        level = stream(self.seed, 11, mi).lognormal(0.0, 0.10, len(self.customers))
        return level if self.planted is None else level * self.planted.true_factor(self, mi)


def _largest_remainder(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    raw = total * weights / weights.sum()
    out = np.maximum(np.floor(raw).astype(int), minimum)
    while out.sum() < total:
        out[np.argmax(raw - out)] += 1
    while out.sum() > total:
        out[np.argmax(np.where(out > minimum, out - raw, -np.inf))] -= 1
    return out


def build_network(n_customers: int, rng: np.random.Generator) -> Network:
    """Boundary substations, feeders (one region each) and distribution transformers."""
    n_feeders = max(2, round(n_customers / 4000))
    n_regions = min(len(REGIONS), max(2, n_feeders // 12))
    n_boundaries = min(n_feeders, max(2, min(6, round(n_feeders / 20))))
    n_dts = max(n_feeders, round(n_customers / 100))
    per_region = _largest_remainder(n_feeders, REGION_WEIGHTS[:n_regions], 1)
    feeder_region = np.repeat(np.arange(n_regions), per_region)
    number = np.concatenate([np.arange(k) for k in per_region])
    feeder_no = 471 + (number // 9) * 10 + number % 9
    codes = [REGIONS[r][0] for r in range(n_regions)]
    feeder_id = np.array(
        [f"{codes[r]}-{no}" for r, no in zip(feeder_region, feeder_no, strict=True)], dtype=object
    )
    feeder_name = np.array(
        [f"Xuất tuyến {no} {REGIONS[r][1]}" for r, no in zip(feeder_region, feeder_no, strict=True)],
        dtype=object,
    )
    feeder_boundary = (np.arange(n_feeders) * n_boundaries) // n_feeders
    dt_feeder = (np.arange(n_dts) * n_feeders) // n_dts
    first_of_feeder = np.searchsorted(dt_feeder, dt_feeder)
    dt_no = np.arange(n_dts) - first_of_feeder + 1
    dt_id = np.array(
        [f"{feeder_id[f]}-T{k:03d}" for f, k in zip(dt_feeder, dt_no, strict=True)], dtype=object
    )
    communes = [
        tuple(c if c.startswith("Phường") else f"xã {c}" for c in REGIONS[r][2]) for r in range(n_regions)
    ]
    dt_region = feeder_region[dt_feeder]
    dt_commune = rng.integers(0, 6, n_dts)
    dt_name = np.array(
        [f"TBA {communes[r][c]} {k}" for r, c, k in zip(dt_region, dt_commune, dt_no, strict=True)],
        dtype=object,
    )
    dt_minutes = np.where(rng.random(n_dts) < 0.4, 30, 60)
    if n_dts >= 2:  # every company has both kinds of DT meter
        dt_minutes[:2] = (30, 60)
    return Network(
        region_codes=codes,
        region_districts=[REGIONS[r][1] for r in range(n_regions)],
        region_communes=communes,
        boundary_id=np.array([f"TG110-{b + 1:02d}" for b in range(n_boundaries)], dtype=object),
        boundary_name=np.array(
            [f"Trạm 110kV {SUBSTATIONS[b % len(SUBSTATIONS)]}" for b in range(n_boundaries)], dtype=object
        ),
        feeder_id=feeder_id,
        feeder_name=feeder_name,
        feeder_region=feeder_region,
        feeder_boundary=feeder_boundary,
        dt_id=dt_id,
        dt_name=dt_name,
        dt_feeder=dt_feeder,
        dt_region=dt_region,
        dt_route_day=rng.integers(6, 16, n_dts),
        dt_minutes=dt_minutes,
        dt_loss=rng.uniform(0.009, 0.025, n_dts),
        feeder_loss=rng.uniform(0.008, 0.018, n_feeders),
        boundary_loss=rng.uniform(0.002, 0.004, n_boundaries),
    )


def _class_counts(n: int) -> np.ndarray:
    return _largest_remainder(n, COUNT_SHARE, 1 if n >= 200 else 0)


def _base_consumption(klass: np.ndarray, n_initial: int, rng: np.random.Generator) -> np.ndarray:
    """Log-normal per class, scaled so the class totals hit KWH_SHARE of the company's kWh."""
    base = np.exp(rng.normal(0.0, SPREAD[klass]))
    res = klass == RESIDENTIAL
    total = KWH_PER_CUSTOMER_MONTH * n_initial
    for k in range(N_CLASSES):
        mine = klass == k
        if mine.any():
            base[mine] *= KWH_SHARE[k] * total / base[mine].sum()
    base[res] = np.minimum(base[res], RESIDENTIAL_CAP)
    return base


def _tariffs(klass: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    code = np.full(len(klass), CODE_INDEX["SH"], dtype=np.int16)

    def pick(mask: np.ndarray, thresholds: tuple[tuple[float, str], ...]) -> None:
        for limit, name in thresholds:
            code[mask & (base >= limit)] = CODE_INDEX[name]
            mask = mask & (base < limit)

    pick(klass == INDUSTRIAL, ((500_000, "SX-110"), (50_000, "SX-22"), (5_000, "SX-6"), (0, "SX-LV")))
    pick(klass == COMMERCIAL, ((50_000, "KD-22"), (5_000, "KD-6"), (0, "KD-LV")))
    health = rng.random(len(klass)) < 0.4
    pick((klass == PUBLIC_ADMIN) & health, ((5_000, "BV-6"), (0, "BV-LV")))
    pick((klass == PUBLIC_ADMIN) & ~health, ((5_000, "HC-6"), (0, "HC-LV")))
    code[klass == AGRICULTURE] = CODE_INDEX["NN-LV"]
    code[klass == OTHER] = CODE_INDEX["KH-LV"]
    return code


def _current_transformer(base: np.ndarray, klass: np.ndarray) -> np.ndarray:
    """Meter multiplier: 1 for households and small users, a CT (and VT) ratio for large ones."""
    mult = np.select(
        [base < 2_000, base < 10_000, base < 50_000, base < 200_000, base < 1_000_000],
        [1, 20, 40, 100, 400],
        default=2000,
    )
    return np.where(klass == RESIDENTIAL, 1, mult).astype(np.int64)


def _daytime(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into a working day (08:00 to 16:59:59) for field work."""
    return 8 * 3600 + rng.integers(0, 9 * 3600, n)


def _day_in_month(rng: np.random.Generator, month: np.datetime64, avoid: np.ndarray) -> np.ndarray:
    """A day of the month (1-based) per row, never the row's `avoid` day (its reading day)."""
    n_days = days_in_month(month)
    day = rng.integers(1, n_days, len(avoid))
    return np.where(day >= avoid, day + 1, day)


def build_company(
    customers: int, start: np.datetime64, end: np.datetime64, seed: int, fault_rate: float
) -> Company:
    """The whole company: shapes, network, customers with their first meters, and the event schedule."""
    axis = make_axis(start, end)
    shapes = make_shapes(axis, stream(seed, 1))
    network = build_network(customers, stream(seed, 2))
    rng = stream(seed, 3)
    opening = seconds(axis.months[0])
    event_months = [mi for mi in range(2, len(axis.months)) if mi % 3 == 2]

    klass = rng.permutation(np.repeat(np.arange(N_CLASSES, dtype=np.int8), _class_counts(customers)))
    base = _base_consumption(klass, customers, rng)
    n_dts = len(network.dt_id)
    dt0 = rng.integers(0, n_dts, customers).astype(np.int32)
    connected = seconds(np.datetime64("1995-01-01")) + rng.integers(
        0, opening - seconds(np.datetime64("1995-01-01")) - 60 * DAY_SECONDS, customers
    )

    # New households connect during event months; they take the next sequence numbers.
    n_new = max(1, round(customers * 0.002))
    new_klass, new_base, new_dt, new_conn = [], [], [], []
    for mi in event_months:
        dts = rng.integers(0, n_dts, n_new).astype(np.int32)
        day = _day_in_month(rng, axis.months[mi], network.dt_route_day[dts])
        new_dt.append(dts)
        new_conn.append(seconds(axis.months[mi]) + (day - 1) * DAY_SECONDS + _daytime(rng, n_new))
        new_klass.append(np.zeros(n_new, dtype=np.int8))
        new_base.append(
            np.minimum(
                np.exp(rng.normal(0.0, SPREAD[0], n_new))
                * base[klass == 0].mean()
                / np.exp(SPREAD[0] ** 2 / 2),
                RESIDENTIAL_CAP,
            )
        )
    klass = np.concatenate([klass, *new_klass])
    base = np.concatenate([base, *new_base])
    dt0 = np.concatenate([dt0, *new_dt])
    conn = np.concatenate([connected, *new_conn]).astype(np.int64)
    n_all = len(klass)

    tariff = _tariffs(klass, base, rng)
    tou = np.isin(klass, (INDUSTRIAL, COMMERCIAL))
    big = np.where(klass == INDUSTRIAL, base >= 20_000, base >= 10_000)
    medium = base >= 3_000
    reads = np.where(tou, np.where(big, 3, np.where(medium, 2, 1)), 1).astype(np.int8)
    read_day = np.select(
        [reads == 3, reads == 2],
        [rng.integers(1, 9, n_all), rng.integers(1, 14, n_all)],
        rng.integers(6, 16, n_all),
    ).astype(np.int8)
    mult = _current_transformer(base, klass)
    scale = np.where(mult > 1, 100, 1).astype(np.int64)

    region = network.dt_region[dt0]
    ids = _customer_ids(network.region_codes, region)
    people_rng = stream(seed, 4)
    commune_idx = rng.integers(0, 6, n_all)
    commune = pa.array([network.region_communes[r][c] for r, c in zip(region, commune_idx, strict=True)])
    district = pa.array(network.region_districts).take(pa.array(region))
    cash_u = np.where(klass == RESIDENTIAL, rng.random(n_all), -1.0)
    business = klass != RESIDENTIAL
    cashless_channel = np.where(
        business,
        rng.choice(6, n_all, p=BUSINESS_CASHLESS_MIX),
        rng.choice(6, n_all, p=HOUSEHOLD_CASHLESS_MIX),
    ).astype(np.int8)
    cust = Customers(
        n_initial=customers,
        ids=ids,
        klass=klass,
        tariff=tariff,
        base=base,
        dt0=dt0,
        conn=conn,
        disc=np.full(n_all, NEVER, dtype=np.int64),
        tou=tou,
        reads=reads,
        read_day=read_day,
        mult=mult,
        scale=scale,
        cash_u=cash_u,
        cash_channel=(rng.random(n_all) < 0.45).astype(np.int8),
        cashless_channel=cashless_channel,
        name=people.names(people_rng, klass, commune),
        address=people.addresses(people_rng, commune, district),
        phone=people.phones(people_rng, n_all),
    )
    meters, events = _schedule(cust, network, axis, event_months, seed, fault_rate)
    company = Company(
        seed=seed,
        fault_rate=fault_rate,
        axis=axis,
        shapes=shapes,
        network=network,
        customers=cust,
        meters=meters,
        events=events,
    )
    from etl.synth.theft import plant  # theft builds on the company

    company.planted = plant(company)
    return company


def _customer_ids(region_codes: list[str], region: np.ndarray) -> pa.Array:
    """PC03 + region code + a 7-digit number counted per region: 13 characters."""
    seq = np.zeros(len(region), dtype=np.int64)
    for r in range(len(region_codes)):
        mine = region == r
        seq[mine] = np.arange(1, mine.sum() + 1) * 7 + r  # gaps, like real numbering after closures
    prefix = pa.array([f"PC03{code}" for code in region_codes]).take(pa.array(region))
    number = pc.utf8_lpad(pa.array(seq).cast(pa.string()), 7, "0")
    return pc.binary_join_element_wise(prefix, number, "")


def _schedule(
    cust: Customers, network: Network, axis: Axis, event_months: list[int], seed: int, fault_rate: float
) -> tuple[CustomerMeters, Events]:
    """First meters of every customer, then disconnections, moves, meter changes and planted rollovers."""
    rng = stream(seed, 5)
    n_all = len(cust)
    n = cust.n_initial
    opening = seconds(axis.months[0])
    households = np.flatnonzero(cust.klass[:n] == RESIDENTIAL)
    digits = np.where(cust.klass == RESIDENTIAL, np.where(rng.random(n_all) < 0.6, 5, 6), 6).astype(np.int8)
    installed = np.maximum(cust.conn, opening - rng.integers(60, 3000, n_all) * DAY_SECONDS)
    installed = np.where(np.arange(n_all) >= n, cust.conn, installed)
    # Start indexes leave room for three times the range's consumption: only planted rollovers happen.
    span_units = cust.base * (len(axis.months) + 1) * cust.scale / cust.mult
    capacity = np.power(10.0, digits) * cust.scale
    room = np.maximum(capacity - 3 * span_units, 1)
    start_units = np.zeros((n_all, 4), dtype=np.int64)
    start_units[:, :] = (rng.random((n_all, 4)) * room[:, None]).astype(np.int64)
    start_units[n:, :] = rng.integers(0, 6, (n_all - n, 4))

    n_changes = max(1, round(fault_rate * 0.002 * n)) if fault_rate > 0 else 0
    n_moves = max(1, round(n * 0.0003))
    n_disc = max(1, round(n * 0.0005))
    taken = np.zeros(n_all, dtype=bool)
    move_cust, move_month, move_dt = [], [], []
    change_cust, change_time = [], []

    def choose(k: int) -> np.ndarray:
        free = households[~taken[households]]
        picked = (
            rng.choice(free, min(k, len(free)), replace=False) if len(free) else np.array([], dtype=np.int64)
        )
        taken[picked] = True
        return picked

    route = network.dt_route_day
    for mi in event_months:
        month_start = seconds(axis.months[mi])
        gone = choose(n_disc)
        day = _day_in_month(rng, axis.months[mi], route[cust.dt0[gone]])
        cust.disc[gone] = month_start + (day - 1) * DAY_SECONDS + _daytime(rng, len(gone))
        if mi + 1 < len(axis.months):
            movers = choose(n_moves)
            other = rng.integers(0, len(network.dt_id), len(movers))
            same_region = network.dt_region[other] == network.dt_region[cust.dt0[movers]]
            shift = (
                np.flatnonzero(network.dt_region != network.dt_region[cust.dt0[movers][0]])
                if len(movers)
                else np.array([], dtype=np.int64)
            )
            if len(shift):
                other = np.where(same_region, rng.choice(shift, len(movers)), other)
            move_cust.append(movers)
            move_month.append(np.full(len(movers), mi + 1))
            move_dt.append(other.astype(np.int32))
        if n_changes:
            changed = choose(n_changes)
            day = _day_in_month(rng, axis.months[mi], route[cust.dt0[changed]])
            change_cust.append(changed)
            change_time.append(month_start + (day - 1) * DAY_SECONDS + _daytime(rng, len(changed)))

    rollover = np.array([], dtype=np.int64)
    if fault_rate > 0:
        n_roll = max(1, round(fault_rate * len(households)))
        five = households[(digits[households] == 5) & ~taken[households]]
        rollover = np.sort(rng.choice(five, min(n_roll, len(five)), replace=False))
        months = len(axis.months) - 1
        used_before_roll = cust.base[rollover] * rng.uniform(1.2, max(1.3, months - 0.5), len(rollover))
        start_units[rollover, 0] = np.maximum(0, 10**5 - used_before_roll).astype(np.int64)

    ccust = np.concatenate(change_cust) if change_cust else np.array([], dtype=np.int64)
    ctime = np.concatenate(change_time) if change_time else np.array([], dtype=np.int64)
    n_meters = n_all + len(ccust)
    meter_cust = np.concatenate([np.arange(n_all), ccust])
    meter_installed = np.concatenate([installed, ctime])
    meter_removed = np.full(n_meters, NEVER, dtype=np.int64)
    meter_removed[:n_all] = cust.disc
    meter_removed[ccust] = ctime
    meter_digits = np.concatenate([digits, np.full(len(ccust), 6, dtype=np.int8)])
    new_start = np.zeros((len(ccust), 4), dtype=np.int64)
    new_start[:, 0] = rng.integers(0, 6, len(ccust))
    meters = CustomerMeters(
        meter_id=pc.binary_join_element_wise(
            "CM", pc.utf8_lpad(pa.array(np.arange(1, n_meters + 1)).cast(pa.string()), 9, "0"), ""
        ),
        cust=meter_cust,
        installed=meter_installed,
        removed=meter_removed,
        digits=meter_digits,
        start_units=np.concatenate([start_units, new_start]),
        current0=np.arange(n_all),
    )
    events = Events(
        move_cust=np.concatenate(move_cust) if move_cust else np.array([], dtype=np.int64),
        move_month=np.concatenate(move_month) if move_month else np.array([], dtype=np.int64),
        move_dt=np.concatenate(move_dt) if move_dt else np.array([], dtype=np.int32),
        change_cust=ccust,
        change_time=ctime,
        change_new=np.arange(n_all, n_meters),
        rollover_meters=rollover,
        event_months=event_months,
    )
    return meters, events
