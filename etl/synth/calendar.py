"""Time in the synthetic company: months, half-hour slots, time-of-use hours and consumption shapes.

Times are local wall-clock seconds since 1970-01-01 (Asia/Ho_Chi_Minh has no daylight saving), so a
month is a plain range of seconds and UTC is those seconds minus seven hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLOT_SECONDS = 1800
SLOTS_PER_DAY = 48
DAY_SECONDS = 86_400
UTC_OFFSET_SECONDS = 7 * 3600

# Customer classes in etl.contract.CUSTOMER_CLASSES order.
RESIDENTIAL, COMMERCIAL, INDUSTRIAL, PUBLIC_ADMIN, AGRICULTURE, OTHER = range(6)
N_CLASSES = 6

# Time-of-use buckets, in the order of the NORMAL, PEAK and OFFPEAK registers.
NORMAL, PEAK, OFFPEAK = range(3)

# Hourly load shape per class (relative, normalised to a mean of 1 below). Households peak in the
# evening, industry runs two shifts, irrigation pumps run at night on cheap off-peak energy.
_HOURLY = np.array(
    [
        [0.55, 0.50, 0.48, 0.48, 0.50, 0.65, 0.90, 1.00, 0.85, 0.75, 0.75, 0.85,
         0.90, 0.80, 0.75, 0.80, 0.95, 1.30, 1.75, 1.90, 1.80, 1.55, 1.20, 0.80],
        [0.35, 0.32, 0.30, 0.30, 0.32, 0.40, 0.60, 0.90, 1.20, 1.35, 1.45, 1.50,
         1.45, 1.35, 1.35, 1.40, 1.45, 1.55, 1.70, 1.75, 1.60, 1.25, 0.80, 0.50],
        [0.68, 0.66, 0.65, 0.65, 0.66, 0.72, 0.95, 1.18, 1.25, 1.26, 1.26, 1.18,
         1.02, 1.20, 1.26, 1.26, 1.22, 1.10, 0.98, 0.92, 0.88, 0.84, 0.76, 0.70],
        [0.60, 0.58, 0.58, 0.58, 0.60, 0.62, 0.75, 1.35, 1.75, 1.80, 1.80, 1.60,
         1.20, 1.65, 1.75, 1.70, 1.45, 0.95, 0.80, 0.78, 0.75, 0.70, 0.66, 0.62],
        [1.75, 1.80, 1.80, 1.75, 1.20, 0.85, 0.70, 0.65, 0.60, 0.60, 0.62, 0.62,
         0.62, 0.62, 0.62, 0.62, 0.65, 0.70, 0.72, 0.75, 0.90, 1.10, 1.70, 1.75],
        [0.80, 0.78, 0.78, 0.78, 0.80, 0.85, 0.95, 1.05, 1.15, 1.20, 1.20, 1.15,
         1.10, 1.15, 1.20, 1.20, 1.15, 1.10, 1.05, 1.00, 0.95, 0.90, 0.85, 0.82],
    ]
)  # fmt: skip

# Monday..Sunday factors per class.
_WEEKLY = np.array(
    [
        [1.00, 1.00, 1.00, 1.00, 1.00, 1.03, 1.06],
        [1.00, 1.00, 1.00, 1.00, 1.02, 1.05, 0.95],
        [1.04, 1.04, 1.04, 1.04, 1.04, 0.98, 0.80],
        [1.12, 1.12, 1.12, 1.12, 1.10, 0.80, 0.62],
        [1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00],
        [1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00],
    ]
)

# Mid-month season (Jan..Dec): hot dry west wind May-August, Tet in Jan-Feb, floods in Oct-Nov.
SEASON = np.array([0.90, 0.87, 0.97, 1.05, 1.14, 1.19, 1.18, 1.14, 1.03, 0.91, 0.87, 0.92])
_SEASON_AMPLITUDE = np.array([1.30, 1.00, 0.50, 0.80, 1.50, 0.80])

# Lunar new year: factories and offices close, households use a little more.
_TET_DAYS = {
    2019: "2019-02-05", 2020: "2020-01-25", 2021: "2021-02-12", 2022: "2022-02-01",
    2023: "2023-01-22", 2024: "2024-02-10", 2025: "2025-01-29", 2026: "2026-02-17",
    2027: "2027-02-06", 2028: "2028-01-26", 2029: "2029-02-13", 2030: "2030-02-03",
    2031: "2031-01-23",
}  # fmt: skip
_TET_FACTOR = np.array([1.06, 0.80, 0.45, 0.45, 0.70, 0.90])

GROWTH_PER_YEAR = 0.027
GROWTH_EPOCH = np.datetime64("2024-01-01", "D")
# Time-of-use hours change on this date (DOMAIN.md).
TOU_2026 = np.datetime64("2026-04-22", "D")


def parse_month(text: str) -> np.datetime64:
    """'YYYY-MM' as a numpy month. Raises ValueError when the text is not a month."""
    if len(text) != 7 or text[4] != "-":
        raise ValueError(f"not a month (YYYY-MM): {text!r}")
    return np.datetime64(text, "M")


def seconds(value: np.datetime64) -> int:
    """Local wall-clock seconds since 1970 of a month or a day."""
    return int(value.astype("datetime64[s]").astype(np.int64))


def days_in_month(month: np.datetime64) -> int:
    return int(((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(int))


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 for days counted from 1970-01-01 (a Thursday)."""
    return (days + 3) % 7


@dataclass(frozen=True)
class Axis:
    """Half-hour slots from the first day of `months[0]` to the first day after `end_year`."""

    months: np.ndarray  # datetime64[M]: the opening month (before the range), then the range
    t0: int
    n_slots: int

    def month_bounds(self, mi: int) -> tuple[int, int]:
        """Seconds of the first instant of month `mi` and of the month after it."""
        return seconds(self.months[mi]), seconds(self.months[mi] + 1)

    def slot(self, t: np.ndarray | int) -> np.ndarray:
        return (np.asarray(t) - self.t0) // SLOT_SECONDS


def make_axis(start: np.datetime64, end: np.datetime64) -> Axis:
    """Slots from the month before `start` to the end of `end`'s year (plans need whole years)."""
    months = np.arange(start - 1, end + 1, dtype="datetime64[M]")
    last_day = np.datetime64(f"{int(str(end)[:4]) + 1}-01-01", "D")
    t0 = seconds(months[0])
    return Axis(months=months, t0=t0, n_slots=(seconds(last_day) - t0) // SLOT_SECONDS)


@dataclass(frozen=True)
class Shapes:
    """Energy per half-hour for one unit of monthly base consumption, per class.

    `rate[k, h]` is the kWh in slot h of a customer of class k whose base is 1 kWh a month;
    `cum[k, b, i]` is the sum of rate over slots before i that fall in time-of-use bucket b.
    """

    axis: Axis
    rate: np.ndarray  # (classes, slots)
    bucket: np.ndarray  # (slots,) NORMAL / PEAK / OFFPEAK
    cum: np.ndarray  # (classes, 3, slots + 1)

    def cumulative(self, klass: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Cumulative energy per bucket at times `t` (seconds), shape (n, 3); linear inside a slot."""
        pos = (np.asarray(t, dtype=np.int64) - self.axis.t0) / SLOT_SECONDS
        i = np.clip(np.floor(pos).astype(np.int64), 0, self.axis.n_slots - 1)
        frac = np.clip(pos - i, 0.0, 1.0)
        lo = self.cum[klass, :, i]
        hi = self.cum[klass, :, i + 1]
        return lo + (hi - lo) * frac[:, None]


def _tou_buckets(days: np.ndarray) -> np.ndarray:
    """Bucket of every slot of the given days (DOMAIN.md hours, the 2026 hours from 22 April 2026)."""
    slot = np.tile(np.arange(SLOTS_PER_DAY), len(days))
    day = np.repeat(days, SLOTS_PER_DAY)
    workday = np.repeat(weekday(days) < 6, SLOTS_PER_DAY)
    new_hours = day >= TOU_2026.astype(np.int64)
    peak_old = workday & (((slot >= 19) & (slot < 23)) | ((slot >= 34) & (slot < 40)))
    off_old = (slot >= 44) | (slot < 8)
    peak_new = workday & (slot >= 35) & (slot < 45)
    off_new = slot < 12
    peak = np.where(new_hours, peak_new, peak_old)
    off = np.where(new_hours, off_new, off_old)
    return np.where(peak, PEAK, np.where(off, OFFPEAK, NORMAL)).astype(np.int8)


def _season(days: np.ndarray) -> np.ndarray:
    """Per class and day: the mid-month anchors interpolated around the year."""
    d = days.astype("datetime64[D]")
    year_start = d.astype("datetime64[Y]").astype("datetime64[D]")
    doy = (d - year_start).astype(np.float64)
    anchors = np.arange(12) * 30.44 + 15.2
    xp = np.concatenate([anchors - 365.25, anchors, anchors + 365.25])
    fp = np.tile(SEASON, 3)
    base = np.interp(doy, xp, fp)
    return 1.0 + _SEASON_AMPLITUDE[:, None] * (base[None, :] - 1.0)


def _tet(days: np.ndarray) -> np.ndarray:
    """Per class and day: the Tet factor (4 days before to 6 days after the lunar new year)."""
    d = days.astype("datetime64[D]")
    years = d.astype("datetime64[Y]").astype(int) + 1970
    out = np.ones((N_CLASSES, len(days)))
    for year in np.unique(years):
        tet = np.datetime64(_TET_DAYS.get(int(year), f"{int(year)}-02-05"), "D")
        near = (d >= tet - 4) & (d <= tet + 6)
        out[:, near] = _TET_FACTOR[:, None]
    return out


def _weather(n_days: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth day-to-day weather factor shared by all customers (AR(1) on the log, sd 4%)."""
    shocks = rng.normal(0.0, 0.04 * np.sqrt(1 - 0.7**2), n_days)
    log = np.empty(n_days)
    acc = 0.0
    for i, e in enumerate(shocks):
        acc = 0.7 * acc + e
        log[i] = acc
    return np.exp(log)


def make_shapes(axis: Axis, rng: np.random.Generator) -> Shapes:
    """Class load shapes over the axis: daily profile x weekday x season x Tet x weather x growth."""
    n_days = axis.n_slots // SLOTS_PER_DAY
    first_day = axis.t0 // DAY_SECONDS
    days = np.arange(first_day, first_day + n_days, dtype=np.int64)
    half_hours = np.arange(SLOTS_PER_DAY) / 2 + 0.25
    profile = np.array([np.interp(half_hours, np.arange(24) + 0.5, h, period=24) for h in _HOURLY])
    profile /= profile.mean(axis=1, keepdims=True)
    years = (days - GROWTH_EPOCH.astype(np.int64)) / 365.25
    daily = (
        _WEEKLY[:, weekday(days)]
        * _season(days)
        * _tet(days)
        * _weather(n_days, rng)[None, :]
        * np.power(1 + GROWTH_PER_YEAR, years)[None, :]
    )
    # One unit of base = 1 kWh in an average month of 2024 (mean profile and season are ~1).
    rate = (daily[:, :, None] * profile[:, None, :]).reshape(N_CLASSES, -1) / (SLOTS_PER_DAY * 30.4375)
    bucket = _tou_buckets(days)
    cum = np.zeros((N_CLASSES, 3, axis.n_slots + 1))
    for b in range(3):
        cum[:, b, 1:] = np.cumsum(np.where(bucket == b, rate, 0.0), axis=1)
    return Shapes(axis=axis, rate=rate, bucket=bucket, cum=cum)
