"""Register reads of the customer meters, month by month, and the consumption each bill covers.

A customer's true consumption is `base x monthly factor x class shape`, cumulated from the axis start.
A meter's index is its start index plus that consumption since installation, divided by the multiplier
and floored to the meter's unit (whole kWh, or hundredths on CT meters), wrapping at 10^digits. Bills
take index differences, so they always agree with the reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from etl.synth.calendar import DAY_SECONDS
from etl.synth.company import Company, stream
from etl.synth.faults import FaultLog
from etl.synth.writer import (
    Extra,
    Landing,
    centi_or_whole,
    extra_line_numbers,
    line_numbers,
    row_text,
    seconds_text,
)

REGULAR, CONN_IN, CHG_OUT, CHG_IN, DISC_OUT = range(5)
READ_TYPES = ("REGULAR", "METER_IN", "METER_OUT", "METER_IN", "METER_OUT")
REGISTERS = ("TOTAL", "NORMAL", "PEAK", "OFFPEAK")
_EPS = 1e-7  # floors of index values computed as start + consumption - consumption must not lose a unit


@dataclass
class MonthReads:
    """One row per read event, sorted by customer then time."""

    cust: np.ndarray
    t: np.ndarray
    kind: np.ndarray
    meter: np.ndarray  # index into CustomerMeters
    wrapped: np.ndarray  # (n, 4) index units as displayed (after rollover)
    rollover: np.ndarray  # (n, 4) bool: this register's index went down through 10^digits

    def __len__(self) -> int:
        return len(self.cust)


@dataclass
class Bills:
    """One row per bill: the reading period and the kWh per register (hundredths)."""

    cust: np.ndarray
    start: np.ndarray  # seconds of the opening read (or connection)
    end: np.ndarray  # seconds of the closing read
    centi_kwh: np.ndarray  # (n, 4) TOTAL, NORMAL, PEAK, OFFPEAK
    seq: np.ndarray  # 1, 2, 3: the bill's number among the customer's bills of the month

    def __len__(self) -> int:
        return len(self.cust)


class RegisterBook:
    """Carries every customer's meter state from one month to the next."""

    def __init__(self, company: Company) -> None:
        self.company = company
        c = company.customers
        m = company.meters
        n = len(c)
        self.meter = m.current0.copy()
        unit_kwh = c.mult / c.scale
        self.offset = m.start_units[:n].astype(np.float64) * unit_kwh[:, None]
        self.units = m.start_units[:n].copy()
        self.pending = np.zeros((n, 4), dtype=np.int64)
        self.boundary = np.full(n, -1, dtype=np.int64)
        self.cum_start = np.zeros((n, 3))
        self.unit_kwh = unit_kwh
        self.register_used = np.zeros((n, 4), dtype=bool)
        self.register_used[:, 0] = True
        self.register_used[c.tou, 1:] = True

    def _scheduled(self, mi: int, ms: int, me: int) -> tuple[np.ndarray, np.ndarray]:
        """Regular reads at 00:00 of the reading days: households once, time-of-use customers 1-3 times."""
        c = self.company.customers
        route = self.company.network.dt_route_day[self.company.dt_in_month(mi)]
        custs, times = [], []
        for r in range(3):
            has = np.flatnonzero(np.where(c.tou, c.reads > r, r == 0))
            step = np.where(c.reads[has] == 3, 10, 15)
            day = np.where(c.tou[has], c.read_day[has] + r * step, route[has])
            custs.append(has)
            times.append(ms + (day.astype(np.int64) - 1) * DAY_SECONDS)
        cust = np.concatenate(custs)
        t = np.concatenate(times)
        keep = (c.conn[cust] < t) & (t < c.disc[cust]) & (t < me)
        cust, t = cust[keep], t[keep]
        if mi == 0:  # the opening month only provides each customer's last read before the range
            order = np.lexsort((t, cust))
            cust, t = cust[order], t[order]
            last = np.append(cust[1:] != cust[:-1], True)
            cust, t = cust[last], t[last]
        return cust, t

    def _events(self, mi: int, ms: int, me: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.company.customers
        ev = self.company.events
        cust, t = self._scheduled(mi, ms, me)
        parts_c, parts_t, parts_k = [cust], [t], [np.full(len(cust), REGULAR)]
        if mi > 0:
            new = np.flatnonzero((c.conn >= ms) & (c.conn < me))
            gone = np.flatnonzero((c.disc >= ms) & (c.disc < me))
            chg = np.flatnonzero((ev.change_time >= ms) & (ev.change_time < me))
            for who, when, code in (
                (new, c.conn[new], CONN_IN),
                (gone, c.disc[gone], DISC_OUT),
                (ev.change_cust[chg], ev.change_time[chg], CHG_OUT),
                (ev.change_cust[chg], ev.change_time[chg], CHG_IN),
            ):
                parts_c.append(who)
                parts_t.append(when)
                parts_k.append(np.full(len(who), code))
        cust = np.concatenate(parts_c).astype(np.int64)
        t = np.concatenate(parts_t).astype(np.int64)
        kind = np.concatenate(parts_k).astype(np.int8)
        order = np.lexsort((kind, t, cust))
        return cust[order], t[order], kind[order]

    def month(self, mi: int) -> tuple[MonthReads, Bills]:
        """Read events and bills of axis month `mi` (month 0 gives reads and no bills)."""
        co = self.company
        c = co.customers
        ms, me = co.axis.month_bounds(mi)
        cust, t, kind = self._events(mi, ms, me)
        level = c.base * co.monthly_factor(mi)
        if co.planted is not None:  # a bypassed or tampered meter records a share of the true use
            level = level * co.planted.recorded_factor(co, mi)
        lo = np.maximum(ms, c.conn)
        hi = np.minimum(me, c.disc)

        klass = c.klass[cust]
        at_lo = co.shapes.cumulative(klass, lo[cust])
        at_t = co.shapes.cumulative(klass, np.clip(t, lo[cust], np.maximum(lo[cust], hi[cust])))
        used = self.cum_start[cust] + level[cust, None] * np.maximum(at_t - at_lo, 0.0)

        meter, offset = self._meters_at(cust, t, kind, used)
        index_kwh = np.empty((len(cust), 4))
        index_kwh[:, 0] = offset[:, 0] + used.sum(axis=1)
        index_kwh[:, 1:] = offset[:, 1:] + used
        units = np.floor(index_kwh / self.unit_kwh[cust, None] + _EPS).astype(np.int64)
        units[~self.register_used[cust]] = 0
        capacity = (10 ** co.meters.digits[meter].astype(np.int64)) * c.scale[cust]
        wrapped = units % capacity[:, None]

        first = np.append(True, cust[1:] != cust[:-1])
        last = np.append(cust[1:] != cust[:-1], True)
        prev_units = np.where(first[:, None], self.units[cust], np.roll(units, 1, axis=0))
        opening = (kind == CONN_IN) | (kind == CHG_IN)
        delta = np.where(opening[:, None], 0, units - prev_units)
        prev_wrapped = prev_units % capacity[:, None]
        rollover = (wrapped < prev_wrapped) & ~opening[:, None] & (delta > 0)
        centi = delta * (c.mult[cust] * (100 // c.scale[cust]))[:, None]

        bills = self._bills(mi, cust, t, kind, centi, first, last) if mi > 0 else None
        if mi == 0:
            self.boundary[cust[last]] = t[last]
        self.units[cust[last]] = units[last]
        self.meter[cust[last]] = meter[last]
        active = hi > lo
        whole = co.shapes.cumulative(c.klass[active], hi[active]) - co.shapes.cumulative(
            c.klass[active], lo[active]
        )
        self.cum_start[active] += level[active, None] * whole
        reads = MonthReads(cust=cust, t=t, kind=kind, meter=meter, wrapped=wrapped, rollover=rollover)
        return reads, bills if bills is not None else _no_bills()

    def _meters_at(
        self, cust: np.ndarray, t: np.ndarray, kind: np.ndarray, used: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Meter and index offset in force at each event; a change switches both at METER_IN."""
        ev = self.company.events
        meter = self.meter[cust].copy()
        offset = self.offset[cust].copy()
        outs = np.flatnonzero(kind == CHG_OUT)
        if not len(outs):
            return meter, offset
        who = cust[outs]
        k = _lookup(ev.change_cust, who)  # a customer has at most one meter change
        new_meter = ev.change_new[k]
        start = self.company.meters.start_units[new_meter].astype(np.float64) * self.unit_kwh[who, None]
        new_offset = start.copy()
        new_offset[:, 0] = start[:, 0] - used[outs].sum(axis=1)
        new_offset[:, 1:] = start[:, 1:] - used[outs]
        change_of = np.full(len(self.meter), -1)
        change_of[who] = np.arange(len(who))
        j = change_of[cust]
        after = (j >= 0) & ((t > t[outs][j]) | (kind == CHG_IN))
        meter[after] = new_meter[j[after]]
        offset[after] = new_offset[j[after]]
        self.offset[who] = new_offset
        return meter, offset

    def _bills(
        self,
        mi: int,
        cust: np.ndarray,
        t: np.ndarray,
        kind: np.ndarray,
        centi: np.ndarray,
        first: np.ndarray,
        last: np.ndarray,
    ) -> Bills:
        """Sum the consumption between consecutive billing reads; carry the rest to next month."""
        is_bill = (kind == REGULAR) | (kind == DISC_OUT)
        if not len(cust):
            return _no_bills()
        starts_group = first | np.append(False, is_bill[:-1])
        gid = np.cumsum(starts_group) - 1
        sums = np.zeros((gid[-1] + 1 if len(gid) else 0, 4), dtype=np.int64)
        np.add.at(sums, gid, centi)
        sums[gid[first]] += self.pending[cust[first]]

        is_boundary = is_bill | (kind == CONN_IN)
        marker = np.where(is_boundary, np.arange(len(cust)), -1)
        latest = np.maximum.accumulate(marker) if len(marker) else marker
        before = np.append(-1, latest[:-1])
        own = (before >= 0) & ~first
        own[own] = cust[before[own]] == cust[own]
        prev_t = np.where(own, t[np.maximum(before, 0)], self.boundary[cust])

        rows = np.flatnonzero(is_bill)
        seq = np.ones(len(rows), dtype=np.int64)
        if len(rows):
            same = np.append(False, cust[rows][1:] == cust[rows][:-1])
            run = np.cumsum(~same)
            seq = np.arange(len(rows)) - np.searchsorted(run, run) + 1
        bills = Bills(cust=cust[rows], start=prev_t[rows], end=t[rows], centi_kwh=sums[gid[rows]], seq=seq)

        last_rows = np.flatnonzero(last)
        trailing = np.where(is_bill[last_rows, None], 0, sums[gid[last_rows]])
        self.pending[cust[last_rows]] = trailing
        b_rows = np.flatnonzero(is_boundary)
        newest = (
            np.append(cust[b_rows][1:] != cust[b_rows][:-1], True) if len(b_rows) else b_rows.astype(bool)
        )
        self.boundary[cust[b_rows[newest]]] = t[b_rows[newest]]
        return bills


def _lookup(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    order = np.argsort(keys, kind="stable")
    return order[np.searchsorted(keys[order], wanted)]


def _no_bills() -> Bills:
    empty = np.array([], dtype=np.int64)
    return Bills(cust=empty, start=empty, end=empty, centi_kwh=np.zeros((0, 4), dtype=np.int64), seq=empty)


def write_register_reads(
    company: Company, mi: int, reads: MonthReads, landing: Landing, faults: FaultLog
) -> None:
    """One file per month (the opening month's reads go with the first close), sorted by read time."""
    c = company.customers
    used = np.zeros((len(reads), 4), dtype=bool)
    used[:, 0] = True
    used[c.tou[reads.cust], 1:] = True
    order = np.lexsort((reads.cust, reads.t))
    ev, reg = np.nonzero(used[order])
    ev = order[ev]
    units = reads.wrapped[ev, reg]
    whole = c.scale[reads.cust[ev]] == 1
    field_read = reads.kind[ev] != REGULAR
    table = pa.table(
        {
            "meter_id": company.meters.meter_id.take(pa.array(reads.meter[ev])),
            "read_at": seconds_text(reads.t[ev]),
            "register": pa.array(REGISTERS).take(pa.array(reg)),
            "index_value": centi_or_whole(np.where(whole, units * 100, units), whole),
            "read_type": pa.array(READ_TYPES).take(pa.array(reads.kind[ev])),
            # not in the contract: the reading source, kept by ingestion as an extra column
            "source": pa.array(["AMR", "HHU"]).take(pa.array(field_read.astype(np.int8))),
        }
    )
    rng = stream(company.seed, 50, mi)
    extras: list[Extra] = []
    if company.fault_rate > 0 and mi > 0 and table.num_rows >= 10:
        for _ in range(1 if mi == 1 else rng.poisson(company.fault_rate * 20)):
            at = int(rng.integers(0, table.num_rows))
            row = ["" if v is None else str(v) for v in table.slice(at, 1).to_pylist()[0].values()]
            row[2] = "TOTL"
            extras.append(Extra(at, row_text(row)))
    month = company.axis.months[mi]
    close = str(company.axis.months[max(mi, 1)])
    name = f"readings/register_reads_{str(month).replace('-', '')}01_mdms.csv"
    record = landing.put(name, close, table, extras=extras, quarantined=len(extras))
    for line in extra_line_numbers(extras):
        faults.add("bad_enum", "register_reads", "quarantine", file=record.path, line=line)
    lines = line_numbers(np.arange(len(ev)), extras)
    meters = company.meters.meter_id
    rolled = reads.rollover[ev, reg]
    if rolled.any():
        faults.add_many(
            "rollover",
            "register_reads",
            "add_10_pow_digits",
            file=record.path,
            line=lines[rolled],
            meter_id=meters.take(pa.array(reads.meter[ev[rolled]])).to_pylist(),
            key=pa.array(REGISTERS).take(pa.array(reg[rolled])).to_pylist(),
        )
    change = np.isin(reads.kind[ev], (CHG_OUT, CHG_IN)) & (reg == 0)
    if change.any():
        faults.add_many(
            "meter_change",
            "register_reads",
            "no_consumption_across_change",
            file=record.path,
            line=lines[change],
            meter_id=meters.take(pa.array(reads.meter[ev[change]])).to_pylist(),
            key=pa.array(READ_TYPES).take(pa.array(reads.kind[ev[change]])).to_pylist(),
        )
