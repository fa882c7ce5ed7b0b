"""Load profiles of the BOUNDARY, FEEDER and DT meters, with planted faults and the energy VEE must reach.

Energy flows up the network: a DT carries its customers' consumption x (1 + DT loss) with a little
noise, a feeder its DTs x (1 + line loss), a boundary its feeders x (1 + a small loss). Recorded kWh is
true kWh / multiplier rounded to 3 decimals, and the truth is taken from the rounded values.

Faults are planted inside a month (never in its first 8 days or last day), each with a clean margin,
so that VEE's result is known exactly: the true profile across a short gap (and a rejected reading) is
the straight line VEE interpolates, across a long gap it repeats the week before. The one planted loss
is a long gap whose like-day is itself a gap: VEE leaves it missing, and the truth says so.

In a time zone with daylight saving the month's intervals are its real instants (`month_grid`): the
wall-clock slot of the skipped hour is not sent, that of the repeated hour is sent twice (both local
times without offset, the earlier instant first), and every figure is taken from those intervals. With
`solar_share`, that share of the DT meters also sends an ACTIVE_EXPORT channel: rooftop solar sent back
through the transformer at midday, in its own file with a `channel` column.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from etl.settings import LOCAL_TZ
from etl.synth.calendar import DAY_SECONDS, N_CLASSES, days_in_month
from etl.synth.company import Company, stream
from etl.synth.faults import FaultLog
from etl.synth.tariff import round_half_up
from etl.synth.writer import (
    Extra,
    Landing,
    extra_line_numbers,
    instants_text,
    line_numbers,
    milli,
    row_text,
    seconds_text,
)
from etl.timezone import fixed_offset_us

BOUNDARY, FEEDER, DT = range(3)
ROLES = ("BOUNDARY", "FEEDER", "DT")
# Standard transformer ratings (kVA) and current-transformer ratios (primary amps / 5 A).
KVA_SIZES = np.array([
    25, 50, 75, 100, 160, 180, 250, 320, 400, 560, 630, 750, 1000, 1250, 1600, 2000, 2500,
    3200, 4000, 5000, 6300, 8000, 10000, 16000, 25000, 40000, 63000, 100000, 160000,
])  # fmt: skip
CT_RATIOS = np.array([
    5, 10, 15, 20, 30, 40, 60, 80, 100, 120, 160, 200, 240, 300, 400, 600, 800, 1000,
    1200, 1600, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000, 40000,
])  # fmt: skip
HIGH_VOLTAGE_MULTS = np.array([2000, 200, 40, 10, 1])
NOISE_SD = 0.04
NOISE_CLIP = 0.12
OVERLAP_SLOTS = 4  # the head-end re-sends the last two hours of the previous month
LOSS_TREND_PER_YEAR = 0.06  # technical losses fall a little every year

# Expected faults per interval meter and month at fault_rate = 1 (scaled by fault_rate).
FAULT_WEIGHTS = {
    "short_gap": 1.0,
    "negative_kwh": 0.3,
    "spike": 0.3,
    "long_gap": 0.4,
    "long_gap_no_like_day": 0.1,
    "estimated_upstream": 0.5,
    "correction": 0.3,
    "late_delivery": 0.2,
}
MALFORMED = ("bad_timestamp", "bad_enum", "wrong_field_count")

# status of a slot in the month's deliveries
ACTUAL, ESTIMATED_UP, GAP, NEGATIVE, SPIKE, CORRECTED, LATE = range(7)


@dataclass
class IntervalMeters:
    meter_id: np.ndarray
    role: np.ndarray
    node: np.ndarray  # index into the role's node arrays
    node_id: np.ndarray
    region: np.ndarray  # -1 for boundary meters
    minutes: np.ndarray
    mult: np.ndarray
    max_kw_milli: np.ndarray  # max_kw in thousandths of recorded kW
    installed: np.ndarray  # days since 1970
    hes: np.ndarray  # head-end system: 1 boundary and feeders, 2 DTs at 30 min, 3 DTs at 60 min

    def __len__(self) -> int:
        return len(self.meter_id)


@dataclass
class MeterMonth:
    """Per interval meter of one month: the truth as micro-kWh recorded (before the multiplier)."""

    true_micro: np.ndarray
    vee_micro: np.ndarray
    estimated_micro: np.ndarray  # the part of vee_micro that VEE estimates by rule
    expected: np.ndarray
    upstream_estimated: np.ndarray
    edited: np.ndarray
    estimated: np.ndarray
    missing: np.ndarray
    export_micro: np.ndarray  # the ACTIVE_EXPORT channel's recorded energy (0 without one)
    export_expected: np.ndarray  # its intervals (0 without one)


@dataclass(frozen=True)
class Grid:
    """The real intervals of one month for one interval length, in time order."""

    take: np.ndarray  # the wall-clock slot of the month each interval carries
    local: np.ndarray  # local wall-clock seconds
    utc: np.ndarray  # UTC seconds


def month_grid(ms: int, me: int, minutes: int, zone: str) -> Grid:
    """The intervals from local wall time `ms` to `me` (seconds): in a zone with daylight saving the
    skipped hour has none and the repeated hour each of its slots twice."""
    step = minutes * 60
    fixed = fixed_offset_us(zone)
    if fixed is not None:
        local = np.arange(ms, me, step, dtype=np.int64)
        return Grid((local - ms) // step, local, local - fixed // 1_000_000)
    tz = ZoneInfo(zone)

    def to_utc(wall: int) -> int:
        return int(datetime.fromtimestamp(wall, UTC).replace(tzinfo=tz).timestamp())

    utc = np.arange(to_utc(ms), to_utc(me), step, dtype=np.int64)
    walls = [int(datetime.fromtimestamp(int(u), tz).replace(tzinfo=UTC).timestamp()) for u in utc]
    local = np.array(walls, dtype=np.int64)
    return Grid((local - ms) // step, local, utc)


def dt_coefficients(company: Company, mi: int) -> np.ndarray:
    """(DTs, classes): the base x monthly level of each DT's customers, weighted by days connected."""
    c = company.customers
    ms, me = company.axis.month_bounds(mi)
    connected = np.clip((np.minimum(me, c.disc) - np.maximum(ms, c.conn)) / (me - ms), 0.0, 1.0)
    weight = c.base * company.monthly_factor(mi) * connected
    n_dt = len(company.network.dt_id)
    key = company.dt_in_month(mi).astype(np.int64) * N_CLASSES + c.klass
    coefficients = np.bincount(key, weights=weight, minlength=n_dt * N_CLASSES).reshape(n_dt, N_CLASSES)
    if company.planted is not None:  # illegal connections: DT load with no customer
        coefficients += company.planted.illegal_coefficients(company, mi)
    return coefficients


def loss_trend(company: Company, mi: int) -> float:
    years = (company.axis.months[mi] - np.datetime64("2024-01", "M")).astype(int) / 12
    return max(0.5, 1.0 - LOSS_TREND_PER_YEAR * years)


def _feeder_starts(company: Company) -> np.ndarray:
    return np.searchsorted(company.network.dt_feeder, np.arange(len(company.network.feeder_id)))


def size_meters(company: Company) -> IntervalMeters:
    """Interval meters with CT ratios and max_kw sized from an upper bound of the load over the range."""
    net = company.network
    shapes = company.shapes
    n_dt, n_f, n_b = len(net.dt_id), len(net.feeder_id), len(net.boundary_id)
    dt_peak = np.zeros(n_dt)
    for mi in range(1, company.n_months + 1):
        ms, me = company.axis.month_bounds(mi)
        h0, h1 = company.axis.slot(ms), company.axis.slot(me)
        top = shapes.rate[:, h0:h1].max(axis=1)  # kWh per slot per unit of base
        dt_peak = np.maximum(dt_peak, dt_coefficients(company, mi) @ top * 2)  # kW
    dt_peak *= (1 + net.dt_loss) * (1 + NOISE_CLIP)
    feeder_peak = np.add.reduceat(dt_peak, _feeder_starts(company)) * (1 + net.feeder_loss)
    boundary_peak = np.bincount(net.feeder_boundary, weights=feeder_peak, minlength=n_b) * (
        1 + net.boundary_loss
    )

    kva = KVA_SIZES[np.minimum(np.searchsorted(KVA_SIZES, dt_peak * 1.05), len(KVA_SIZES) - 1)]
    amps = kva / (np.sqrt(3) * 0.4)
    dt_mult = CT_RATIOS[np.minimum(np.searchsorted(CT_RATIOS, amps / 5), len(CT_RATIOS) - 1)]
    dt_max = np.ceil(np.maximum(kva, dt_peak * 1.05) / dt_mult * 1000)

    def high_voltage(peak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the largest standard multiplier that still records ~10 kWh per half hour at peak
        fits = peak[:, None] * 0.5 / HIGH_VOLTAGE_MULTS[None, :] >= 10
        mult = np.where(fits.any(axis=1), HIGH_VOLTAGE_MULTS[np.argmax(fits, axis=1)], 1)
        return mult, np.ceil(peak * 1.3 / mult * 1000)

    f_mult, f_max = high_voltage(feeder_peak)
    b_mult, b_max = high_voltage(boundary_peak)
    rng = stream(company.seed, 6)
    opening_day = company.axis.t0 // DAY_SECONDS
    dt_hes = np.where(net.dt_minutes == 30, 2, 3)
    order = np.concatenate(
        [np.arange(n_b), n_b + np.arange(n_f), n_b + n_f + np.argsort(dt_hes, kind="stable")]
    )
    meters = IntervalMeters(
        meter_id=np.concatenate(
            [
                [f"BM{i + 1:03d}" for i in range(n_b)],
                [f"FM{i + 1:04d}" for i in range(n_f)],
                [f"DM{i + 1:06d}" for i in range(n_dt)],
            ]
        ).astype(object),
        role=np.repeat(np.array([BOUNDARY, FEEDER, DT], dtype=np.int8), [n_b, n_f, n_dt]),
        node=np.concatenate([np.arange(n_b), np.arange(n_f), np.arange(n_dt)]),
        node_id=np.concatenate([net.boundary_id, net.feeder_id, net.dt_id]),
        region=np.concatenate([np.full(n_b, -1), net.feeder_region, net.dt_region]),
        minutes=np.concatenate([np.full(n_b + n_f, 30), net.dt_minutes]),
        mult=np.concatenate([b_mult, f_mult, dt_mult]).astype(np.int64),
        max_kw_milli=np.concatenate([b_max, f_max, dt_max]).astype(np.int64),
        installed=opening_day - rng.integers(30, 2500, n_b + n_f + n_dt),
        hes=np.concatenate([np.ones(n_b + n_f, dtype=np.int8), dt_hes]).astype(np.int8),
    )
    return IntervalMeters(**{k: v[order] for k, v in meters.__dict__.items()})


def true_energy(company: Company, meters: IntervalMeters, mi: int) -> np.ndarray:
    """True kWh per half-hour slot of the month, one row per interval meter (in `meters` order)."""
    net = company.network
    ms, me = company.axis.month_bounds(mi)
    h0, h1 = company.axis.slot(ms), company.axis.slot(me)
    trend = loss_trend(company, mi)
    rng = stream(company.seed, 20, mi)
    dt = dt_coefficients(company, mi) @ company.shapes.rate[:, h0:h1]
    noise = np.exp(np.clip(rng.normal(0.0, NOISE_SD, dt.shape), -NOISE_CLIP, NOISE_CLIP))
    dt *= (1 + net.dt_loss * trend)[:, None] * noise
    feeder = np.add.reduceat(dt, _feeder_starts(company), axis=0) * (1 + net.feeder_loss * trend)[:, None]
    boundary = np.zeros((len(net.boundary_id), h1 - h0))
    np.add.at(boundary, net.feeder_boundary, feeder)
    boundary *= (1 + net.boundary_loss)[:, None]
    by_role = (boundary, feeder, dt)
    out = np.empty((len(meters), h1 - h0))
    for role in (BOUNDARY, FEEDER, DT):
        rows = np.flatnonzero(meters.role == role)
        out[rows] = by_role[role][meters.node[rows]]
    return out


@dataclass
class Planted:
    """One head-end group's month after planting: what the files carry and what is true."""

    recorded: np.ndarray  # (meters, slots) true recorded kWh in thousandths
    status: np.ndarray
    delivered: np.ndarray  # value in the first delivery, thousandths
    truth: np.ndarray  # true recorded kWh in millionths
    lost: np.ndarray  # VEE cannot fill these
    faults: list[tuple[str, int, int, int]]  # kind, row, first slot, length


class _Planter:
    """Places faults with a clean margin; like-day windows stay clean too."""

    def __init__(self, recorded: np.ndarray, minutes: int, month_days: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.per_day = 1440 // minutes
        self.week = 7 * self.per_day
        self.lo = 8 * self.per_day
        self.hi = (month_days - 1) * self.per_day
        self.used = np.zeros(recorded.shape, dtype=bool)

    def find(self, rows: np.ndarray, length: int, like_day: bool, pair: bool) -> tuple[int, int] | None:
        for _ in range(60):
            row = int(self.rng.choice(rows))
            hi = self.hi - length - (self.week if pair else 0)
            if hi <= self.lo:
                return None
            s = int(self.rng.integers(self.lo, hi))
            windows = [(s - 1, s + length + 1)]
            if like_day:
                windows.append((s - self.week - 1, s - self.week + length + 1))
            if pair:
                windows.append((s + self.week - 1, s + self.week + length + 1))
            if not any(self.used[row, a:b].any() for a, b in windows):
                for a, b in windows:
                    self.used[row, a:b] = True
                return row, s
        return None

    def find_first(self, rows: np.ndarray, length: int) -> int | None:
        """A row whose first `length` + 1 slots are clean, for a gap at the month's start."""
        for _ in range(60):
            row = int(self.rng.choice(rows))
            if not self.used[row, : length + 1].any():
                self.used[row, : length + 1] = True
                return row
        return None


def _length(kind: str, minutes: int, rng: np.random.Generator) -> int:
    longest = 48 if minutes == 30 else 24
    return {
        "short_gap": int(rng.integers(1, 5)),
        "negative_kwh": 1,
        "spike": 1,
        "long_gap": int(rng.integers(5, longest + 1)),
        "long_gap_no_like_day": int(rng.integers(5, longest + 1)),
        "estimated_upstream": int(rng.integers(1, 9)),
        "correction": int(rng.integers(2, 13)),
        "late_delivery": int(rng.integers(5, 25)),
        "edge_gap": int(rng.integers(1, 5)),
        "gap_then_negative": int(rng.integers(2, 5)),
    }[kind]


def plant(
    recorded: np.ndarray,
    minutes: int,
    max_kw_milli: np.ndarray,
    month_days: int,
    plan: list[tuple[str, np.ndarray]],
    rng: np.random.Generator,
    before: np.ndarray | None = None,
) -> Planted:
    """Plant the faults of `plan` (kind, candidate rows) into one group's month; `before` is each row's
    recorded value (thousandths) in the previous month's last interval, the anchor of an edge gap."""
    status = np.zeros(recorded.shape, dtype=np.int8)
    delivered = recorded.copy()
    truth = recorded * 1000
    lost = np.zeros(recorded.shape, dtype=bool)
    planter = _Planter(recorded, minutes, month_days, rng)
    placed = []
    for kind, rows in plan:
        length = _length(kind, minutes, rng)
        if kind == "edge_gap":
            first = planter.find_first(rows, length) if before is not None else None
            if before is not None and first is not None:
                a, b = before[first] * 1000, recorded[first, length] * 1000
                i = np.arange(1, length + 1)
                truth[first, :length] = round_half_up(a * (length + 1 - i) + b * i, length + 1)
                status[first, :length] = GAP
                placed.append((kind, first, 0, length))
            continue
        pair = kind == "long_gap_no_like_day"
        spot = planter.find(rows, length, like_day=kind.startswith("long_gap"), pair=pair)
        if spot is None:
            continue
        row, s = spot
        span = slice(s, s + length)
        if kind in ("short_gap", "negative_kwh", "spike", "gap_then_negative"):
            a, b = recorded[row, s - 1] * 1000, recorded[row, s + length] * 1000
            i = np.arange(1, length + 1)
            truth[row, span] = round_half_up(a * (length + 1 - i) + b * i, length + 1)
            status[row, span] = {"short_gap": GAP, "negative_kwh": NEGATIVE, "spike": SPIKE}.get(kind, GAP)
            if kind == "negative_kwh":
                delivered[row, span] = -np.maximum(recorded[row, span], 1)
            if kind == "gap_then_negative":
                last = s + length - 1
                status[row, last] = NEGATIVE
                delivered[row, last] = -max(int(recorded[row, last]), 1)
            elif kind == "spike":
                limit = max_kw_milli[row] * minutes // 60
                delivered[row, span] = (limit * rng.uniform(1.5, 6.0)).astype(np.int64) + 1
        elif kind.startswith("long_gap"):
            truth[row, span] = recorded[row, s - planter.week : s - planter.week + length] * 1000
            status[row, span] = GAP
            if pair:
                second = slice(s + planter.week, s + planter.week + length)
                status[row, second] = GAP
                lost[row, second] = True
                placed.append(("long_gap", row, s, length))
                placed.append((kind, row, s + planter.week, length))
                continue
        elif kind == "estimated_upstream":
            status[row, span] = ESTIMATED_UP
        elif kind == "correction":
            status[row, span] = CORRECTED
            wrong = np.round(recorded[row, span] * rng.uniform(0.2, 0.8, length)).astype(np.int64)
            delivered[row, span] = np.where(wrong == recorded[row, span], wrong + 1, wrong)
        elif kind == "late_delivery":
            status[row, span] = LATE
        placed.append((kind, row, s, length))
    return Planted(
        recorded=recorded, status=status, delivered=delivered, truth=truth, lost=lost, faults=placed
    )


def meter_month(p: Planted) -> MeterMonth:
    n_slots = p.status.shape[1]
    filled = np.isin(p.status, (GAP, NEGATIVE, SPIKE)) & ~p.lost
    return MeterMonth(
        true_micro=p.truth.sum(axis=1),
        vee_micro=np.where(p.lost, 0, p.truth).sum(axis=1),
        estimated_micro=np.where(filled, p.truth, 0).sum(axis=1),
        expected=np.full(p.status.shape[0], n_slots),
        upstream_estimated=(p.status == ESTIMATED_UP).sum(axis=1),
        edited=(p.status == CORRECTED).sum(axis=1),
        estimated=filled.sum(axis=1),
        missing=p.lost.sum(axis=1),
        export_micro=np.zeros(p.status.shape[0], dtype=np.int64),
        export_expected=np.zeros(p.status.shape[0], dtype=np.int64),
    )


EXPECTED = {
    "short_gap": "interpolate",
    "negative_kwh": "quarantine_then_interpolate",
    "spike": "vee_reject_then_interpolate",
    "long_gap": "like_day",
    "long_gap_no_like_day": "missing",
    "estimated_upstream": "keep_estimated",
    "correction": "later_file_wins",
    "late_delivery": "later_file_fills_gap",
    "edge_gap": "interpolate_across_months",
    "gap_then_negative": "quarantine_then_interpolate_together",
}
# Planted only with edge_faults: a gap in a month's first intervals, its anchor the previous month's last
# interval, and a gap whose next interval is a negative reading (one gap of both, interpolated as one).
EDGE_FAULTS = ("edge_gap", "gap_then_negative")


class IntervalWriter:
    """Writes each month's head-end files and keeps what the next month needs (the overlap rows)."""

    def __init__(
        self,
        company: Company,
        meters: IntervalMeters,
        landing: Landing,
        faults: FaultLog,
        edge_faults: bool = False,
        timezone: str = LOCAL_TZ,
        solar_share: float = 0.0,
    ) -> None:
        self.company = company
        self.meters = meters
        self.landing = landing
        self.faults = faults
        self.edge_faults = edge_faults
        self.zone = timezone
        self.fixed_zone = fixed_offset_us(timezone) is not None
        # hes1: local and UTC seconds and values of the last slots
        self.tail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.last_recorded: dict[int, np.ndarray] = {}  # per head-end: the previous month's last slot
        self.solar = np.zeros(len(meters), dtype=bool)
        if solar_share > 0:
            dts = np.flatnonzero(meters.role == DT)
            chosen = stream(company.seed, 25).random(len(dts)) < solar_share
            chosen[0] = True  # at least one
            self.solar[dts[chosen]] = True

    def month(self, mi: int) -> MeterMonth:
        """Generate, plant, write and account one month of interval data; returns per-meter truth."""
        co = self.company
        im = self.meters
        energy = true_energy(co, im, mi)
        out = MeterMonth(*(np.zeros(len(im), dtype=np.int64) for _ in MeterMonth.__dataclass_fields__))
        rng = stream(co.seed, 21, mi)
        ms, me = co.axis.month_bounds(mi)
        recorded_by_hes: dict[int, tuple[np.ndarray, np.ndarray, Grid]] = {}
        for hes in (1, 2, 3):
            rows = np.flatnonzero(im.hes == hes)
            if not len(rows):
                continue
            minutes = int(im.minutes[rows[0]])
            per_slot = energy[rows] if minutes == 30 else energy[rows, 0::2] + energy[rows, 1::2]
            grid = month_grid(ms, me, minutes, self.zone)
            recorded = np.rint(per_slot[:, grid.take] / im.mult[rows, None] * 1000).astype(np.int64)
            recorded_by_hes[hes] = (rows, recorded, grid)
            plan = self._plan(mi, hes, rows, rng)
            planted = plant(
                recorded,
                minutes,
                im.max_kw_milli[rows],
                days_in_month(co.axis.months[mi]),
                plan,
                rng,
                self.last_recorded.get(hes),
            )
            self.last_recorded[hes] = recorded[:, -1]  # never faulted: faults end a day before the month
            self._write(mi, hes, rows, minutes, planted, rng, grid)
            mm = meter_month(planted)
            for name in MeterMonth.__dataclass_fields__:
                getattr(out, name)[rows] = getattr(mm, name)
        if self.solar.any():
            self._solar(mi, recorded_by_hes, out)
        return out

    def _solar(
        self, mi: int, recorded_by_hes: dict[int, tuple[np.ndarray, np.ndarray, Grid]], out: MeterMonth
    ) -> None:
        """The month's ACTIVE_EXPORT readings of the DT meters with rooftop solar, one file, never faulted:
        a midday bell by local time, up to a quarter of the meter's mean import per interval."""
        im = self.meters
        parts = []
        for hes in (2, 3):
            if hes not in recorded_by_hes:
                continue
            rows, recorded, grid = recorded_by_hes[hes]
            solar = self.solar[rows]
            if not solar.any():
                continue
            minutes = int(im.minutes[rows[0]])
            hour = (grid.local % DAY_SECONDS) / 3600 + minutes / 120
            bell = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None)
            peak = recorded[solar].mean(axis=1) / 4
            values = np.rint(peak[:, None] * bell[None, :]).astype(np.int64)
            r, s = np.nonzero(np.ones(values.shape, dtype=bool))
            ids = pa.array(im.meter_id[rows][solar].tolist(), pa.string())
            parts.append(
                pa.table(
                    {
                        "meter_id": ids.take(pa.array(r)),
                        "interval_start": _times(grid.local[s], "T"),
                        "interval_minutes": pa.array(np.full(len(r), minutes, dtype=np.int64)),
                        "kwh": milli(values[r, s]),
                        "quality": pa.nulls(len(r), pa.string()),
                        "channel": pa.array(["ACTIVE_EXPORT"] * len(r), pa.string()),
                    }
                )
            )
            out.export_micro[rows[solar]] = values.sum(axis=1) * 1000
            out.export_expected[rows[solar]] = values.shape[1]
        if parts:
            period = str(self.company.axis.months[mi])
            self.landing.put(f"readings/interval_reads_{period.replace('-', '')}01_solar.csv", period,
                             pa.concat_tables(parts))  # fmt: skip

    def _plan(
        self, mi: int, hes: int, rows: np.ndarray, rng: np.random.Generator
    ) -> list[tuple[str, np.ndarray]]:
        """Which faults to plant: random counts, plus in the first month one of each on a boundary meter."""
        rate = self.company.fault_rate
        if rate <= 0:
            return []
        local = np.arange(len(rows))
        plan: list[tuple[str, np.ndarray]] = []
        if mi == 1 and hes == 1:
            boundaries = local[self.meters.role[rows] == BOUNDARY]
            plan.extend((kind, boundaries) for kind in FAULT_WEIGHTS)
        if mi == 1 and hes == 3:
            plan.extend((kind, local) for kind in ("short_gap", "long_gap"))
        for kind, weight in FAULT_WEIGHTS.items():
            plan.extend((kind, local) for _ in range(rng.poisson(rate * weight * len(rows))))
        if self.edge_faults:
            edge = stream(self.company.seed, 23, mi, hes)
            for kind in EDGE_FAULTS:
                plan.extend((kind, local) for _ in range(1 + edge.poisson(rate * len(rows))))
        return plan

    def _stamp(self, mi: int, hes: int, local: np.ndarray, utc: np.ndarray) -> pa.Array:
        """Timestamp text per head-end and month: mostly local, some files in UTC (same instants)."""
        i = mi - 1
        if hes == 1 and i % 3 == 1:
            return _times(utc, "T", "Z")
        if hes == 2 and i % 4 == 2:
            return _times(utc, "T", "+00:00")
        return _times(local, " " if hes == 3 else "T")

    def _table(
        self,
        hes: int,
        ids: pa.Array,
        r: np.ndarray,
        t: np.ndarray,
        v: np.ndarray,
        estimated: np.ndarray,
        minutes: int,
        stamp: pa.Array,
    ) -> pa.Table:
        # hes1 writes quality A for actual readings, the DT head-ends leave it empty (NULL means A)
        labels = pa.array(["A" if hes == 1 else None, "E"], pa.string())
        return pa.table(
            {
                "meter_id": ids.take(pa.array(r)),
                "interval_start": stamp,
                "interval_minutes": pa.array(np.full(len(r), minutes, dtype=np.int64)),
                "kwh": milli(v),
                "quality": labels.take(pa.array(estimated.astype(np.int8))),
            }
        )

    def _write(
        self,
        mi: int,
        hes: int,
        rows: np.ndarray,
        minutes: int,
        p: Planted,
        rng: np.random.Generator,
        grid: Grid,
    ) -> None:
        co = self.company
        period = str(co.axis.months[mi])
        ids = pa.array(self.meters.meter_id[rows].tolist(), pa.string())
        sent = (p.status != LATE) & (p.status != GAP)
        r, s = np.nonzero(sent)
        head_t, head_u, head_r, head_v = self._overlap(hes)
        t = np.concatenate([head_t, grid.local[s]])
        u = np.concatenate([head_u, grid.utc[s]])
        table = self._table(
            hes,
            ids,
            np.concatenate([head_r, r]),
            t,
            np.concatenate([head_v, p.delivered[r, s]]),
            np.concatenate([np.zeros(len(head_t), dtype=bool), p.status[r, s] == ESTIMATED_UP]),
            minutes,
            self._stamp(mi, hes, t, u),
        )
        extras, bad = self._malformed(mi, hes, table, rng, u)
        negatives = int((p.status[r, s] == NEGATIVE).sum())
        name = f"readings/interval_reads_{period.replace('-', '')}01_hes{hes}.csv" + (
            ".gz" if hes > 1 else ""
        )
        record = self.landing.put(name, period, table, extras=extras, quarantined=negatives + len(extras))
        if len(head_t):
            self.faults.add_many(
                "duplicate",
                "interval_reads",
                "keep_once",
                file=record.path,
                line=line_numbers(np.arange(len(head_t)), extras),
                meter_id=self.meters.meter_id[rows][head_r],
                interval_start=_text(head_t),
            )
        for kind, line in zip(bad, extra_line_numbers(extras), strict=True):
            self.faults.add(kind, "interval_reads", "quarantine", file=record.path, line=line)
        if hes == 1:
            n_slots = sent.shape[1]
            self.tail = (
                grid.local[n_slots - OVERLAP_SLOTS :],
                grid.utc[n_slots - OVERLAP_SLOTS :],
                p.delivered[:, n_slots - OVERLAP_SLOTS :],
            )

        position = np.full(sent.shape, -1, dtype=np.int64)
        position[sent] = len(head_t) + np.arange(len(r))
        resent = self._resend(mi, hes, ids, minutes, p, grid)
        for kind, row, start, length in p.faults:
            at = position[row, start]
            self.faults.add(
                kind,
                "interval_reads",
                EXPECTED[kind],
                recoverable=kind != "long_gap_no_like_day",
                file=resent if kind == "late_delivery" else (record.path if at >= 0 else None),
                line=int(line_numbers(np.array([at]), extras)[0]) if at >= 0 else None,
                meter_id=self.meters.meter_id[rows][row],
                interval_start=_text(grid.local[[start]])[0],
                n_intervals=length,
            )
        if mi == min(3, co.n_months) and hes == 1:
            self._truncated(mi, table)

    def _overlap(self, hes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The previous month's last two hours again at the top of the hes1 file (exact repeats)."""
        if hes != 1 or self.tail is None or self.company.fault_rate <= 0:
            empty = np.array([], dtype=np.int64)
            return empty, empty, empty, empty
        tail_t, tail_u, tail_v = self.tail
        r, k = np.nonzero(np.ones(tail_v.shape, dtype=bool))
        return tail_t[k], tail_u[k], r, tail_v[r, k]

    def _malformed(
        self, mi: int, hes: int, table: pa.Table, rng: np.random.Generator, utc: np.ndarray
    ) -> tuple[list[Extra], list[str]]:
        """A few broken rows (copies of real rows with another kWh) in the hes1 files."""
        rate = self.company.fault_rate
        if hes != 1 or rate <= 0 or table.num_rows < 10:
            return [], []
        count = rng.poisson(rate * 50)
        kinds = list(MALFORMED) if mi == 1 else [MALFORMED[k] for k in rng.integers(0, 3, count)]
        extras = []
        for kind in kinds:
            at = int(rng.integers(1, table.num_rows))
            fields = ["" if v is None else str(v) for v in table.slice(at, 1).to_pylist()[0].values()]
            fields[3] = f"{float(fields[3]) * 1.5 + 0.1:.3f}"
            if not self.fixed_zone and not fields[1].endswith(("Z", "+00:00")):
                # a copy of a repeated local hour would count as its first appearance: give its instant
                fields[1] = _times(utc[[at]], "T", "Z")[0].as_py()
            if kind == "bad_timestamp":
                fields[1] = fields[1][:5] + "13" + fields[1][7:]
            elif kind == "bad_enum":
                fields[4] = "X"
            else:
                fields = fields[:-1]
            extras.append(Extra(at, row_text(fields)))
        return extras, kinds

    def _resend(self, mi: int, hes: int, ids: pa.Array, minutes: int, p: Planted, grid: Grid) -> str | None:
        """Corrected and late intervals, re-sent by the head-end in a later file (dropped next month).

        In a zone with daylight saving they carry their instant (UTC): a re-sent interval of the repeated
        hour may come without its twin, and a local time alone would then be its first appearance."""
        again = (p.status == CORRECTED) | (p.status == LATE)
        if not again.any():
            return None
        co = self.company
        period = str(co.axis.months[mi])
        r, s = np.nonzero(again)
        t = grid.local[s]
        stamp = _times(t, "T") if self.fixed_zone else _times(grid.utc[s], "T", "Z")
        table = self._table(1, ids, r, t, p.recorded[r, s], np.zeros(len(r), dtype=bool), minutes, stamp)
        name = f"readings/interval_reads_{period.replace('-', '')}01_hes{hes}_r2.csv"
        close = str(co.axis.months[min(mi + 1, co.n_months)])
        return self.landing.put(name, close, table).path

    def _truncated(self, mi: int, table: pa.Table) -> None:
        """A re-send whose transfer broke off: a .csv.gz cut short, rejected whole."""
        if self.company.fault_rate <= 0:
            return
        part = table.slice(0, min(5000, table.num_rows))
        bumped = np.rint(np.array(part.column("kwh").to_pylist(), dtype=float) * 1100).astype(np.int64)
        part = part.set_column(3, "kwh", milli(bumped))
        data = gzip.compress(self.landing.csv_bytes(part), compresslevel=1, mtime=0)
        period = str(self.company.axis.months[mi])
        name = f"readings/interval_reads_{period.replace('-', '')}05_hes1_resend.csv.gz"
        record = self.landing.put_raw(
            name, period, data[: len(data) * 6 // 10], rows=part.num_rows, reason="truncated gzip"
        )
        self.faults.add("truncated_gzip", "interval_reads", "reject_file", file=record.path)


def _times(t: np.ndarray, sep: str, suffix: str = "") -> pa.Array:
    """Interval starts as text: the month's few distinct instants are formatted once (t is on a grid)."""
    first = int(t.min()) if len(t) else 0
    slot = (t - first) // 1800
    return instants_text(first + np.arange(int(slot.max()) + 1 if len(t) else 0) * 1800, sep, suffix).take(
        pa.array(slot)
    )


def _text(t: np.ndarray) -> list[str]:
    return seconds_text(np.asarray(t, dtype=np.int64)).to_pylist()
