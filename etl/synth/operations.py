"""Operations data (CONTRACT.md §9): customer service requests and on-site inspections, month by month.

Calibrated to the company's nine-month report at full size (480,000 customers): about 35,000 requests a
month, almost all resolved on time, some late, cancelled, escalated or still open at the end; about 4,700
inspections a month with a hit rate near 3 % and about 1.5 million đồng recovered per violation.

Each month's files are deliveries: the requests received in the month with their state at the month's
end, plus every earlier request whose state changed in the month (an open request re-delivered as
resolved or cancelled); the month's inspections, plus corrected recovered amounts of some of the previous
month's violations. The truth is both marts, computed from the final state of every request and
inspection by the definitions of CONTRACT.md §9, never by meterflow's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.contract import (
    INSPECTION_RESULTS,
    REQUEST_CHANNELS,
    REQUEST_STATUSES,
    REQUEST_TYPES,
    VIOLATION_TYPES,
)
from etl.synth.calendar import DAY_SECONDS, days_in_month, seconds
from etl.synth.company import Company, stream
from etl.synth.faults import FaultLog
from etl.synth.writer import Extra, Landing, days_text, extra_line_numbers, row_text, seconds_text

FULL_SIZE = 480_000
REQUESTS_PER_MONTH = 35_000
INSPECTIONS_PER_MONTH = 4_700
HOUR = 3600

# Service-level hours per request type, and how often each type and channel occurs.
SLA_HOURS = np.array([168, 72, 24, 120, 120, 72, 120])  # in REQUEST_TYPES order
TYPE_WEIGHTS = np.array([0.10, 0.30, 0.20, 0.12, 0.08, 0.05, 0.15])
CHANNEL_WEIGHTS = np.array([0.35, 0.10, 0.20, 0.20, 0.03, 0.10, 0.02])  # in REQUEST_CHANNELS order
CANCELLED_SHARE = 0.02
LATE_SHARE = 0.008
ESCALATED_SHARE = 0.002  # on top of half of the late ones
VIOLATION_SHARE = 0.0297
NOT_ACCESSIBLE_SHARE = 0.03
VIOLATION_WEIGHTS = np.array([0.40, 0.25, 0.15, 0.15, 0.05])  # in VIOLATION_TYPES order
CORRECTED_SHARE = 0.10  # violations whose recovered amounts are re-delivered the next month
OPEN, RESOLVED, CANCELLED = (REQUEST_STATUSES.index(s) for s in ("OPEN", "RESOLVED", "CANCELLED"))
VIOLATION = INSPECTION_RESULTS.index("VIOLATION")


@dataclass
class Requests:
    """Every request's final state; `closed` is -1 while open at the end of the range."""

    month: np.ndarray  # month index of received
    received: np.ndarray  # local seconds
    due: np.ndarray
    closed: np.ndarray
    status: np.ndarray
    region: np.ndarray
    customer: np.ndarray  # customer index, -1 for someone who is not a customer
    kind: np.ndarray
    channel: np.ndarray
    escalated: np.ndarray


@dataclass
class Inspections:
    """Every inspection's final state: recovered amounts in tenths of kWh and whole đồng."""

    month: np.ndarray
    day: np.ndarray  # days since 1970
    region: np.ndarray
    customer: np.ndarray
    result: np.ndarray
    violation: np.ndarray  # VIOLATION_TYPES index, -1 without a violation
    kwh_tenths: np.ndarray
    vnd: np.ndarray


class Operations:
    """Writes the operations files month by month and keeps what the truth needs."""

    def __init__(self, company: Company, landing: Landing, faults: FaultLog) -> None:
        self.company = company
        self.landing = landing
        self.faults = faults
        self.scale = len(company.customers) / FULL_SIZE
        self.region_of_customer = company.network.dt_region[company.customers.dt0]
        self.requests = self._requests()
        self.inspections = self._inspections()

    @property
    def range_end(self) -> int:
        return self.company.axis.month_bounds(self.company.n_months)[1]

    def _requests(self) -> Requests:
        co = self.company
        rng = stream(co.seed, 41)
        n_regions = len(co.network.region_codes)
        counts = rng.poisson(REQUESTS_PER_MONTH * self.scale, co.n_months)
        month = np.repeat(np.arange(1, co.n_months + 1), counts)
        n = len(month)
        starts = np.array([seconds(m) for m in co.axis.months] + [self.range_end], dtype=np.int64)
        received = starts[month] + (rng.random(n) * (starts[month + 1] - starts[month])).astype(np.int64)
        kind = rng.choice(len(REQUEST_TYPES), n, p=TYPE_WEIGHTS)
        sla = SLA_HOURS[kind] * HOUR
        due = received + sla
        u = rng.random(n)
        cancelled, late = u < CANCELLED_SHARE, (u >= CANCELLED_SHARE) & (u < CANCELLED_SHARE + LATE_SHARE)
        took = np.where(late, sla + HOUR + rng.random(n) * sla, (0.05 + 0.9 * rng.random(n)) * sla)
        closed = received + took.astype(np.int64)
        status = np.where(cancelled, CANCELLED, RESOLVED)
        still_open = closed >= self.range_end
        closed = np.where(still_open, -1, closed)
        status = np.where(still_open, OPEN, status)
        customer = rng.integers(0, len(co.customers), n)
        customer = np.where(
            (kind == REQUEST_TYPES.index("NEW_CONNECTION")) & (rng.random(n) < 0.5), -1, customer
        )
        region = np.where(
            customer >= 0, self.region_of_customer[np.maximum(customer, 0)], rng.integers(0, n_regions, n)
        )
        escalated = (late & (rng.random(n) < 0.5)) | (rng.random(n) < ESCALATED_SHARE)
        channel = rng.choice(len(REQUEST_CHANNELS), n, p=CHANNEL_WEIGHTS)
        return Requests(month, received, due, closed, status, region, customer, kind, channel, escalated)

    def _inspections(self) -> Inspections:
        co = self.company
        rng = stream(co.seed, 42)
        counts = rng.poisson(INSPECTIONS_PER_MONTH * self.scale, co.n_months)
        month = np.repeat(np.arange(1, co.n_months + 1), counts)
        n = len(month)
        first_day = np.array([seconds(m) // DAY_SECONDS for m in co.axis.months])
        length = np.array([days_in_month(m) for m in co.axis.months])
        day = first_day[month] + (rng.random(n) * length[month]).astype(np.int64)
        customer = rng.integers(0, len(co.customers), n)
        u = rng.random(n)
        result = np.where(
            u < VIOLATION_SHARE,
            VIOLATION,
            np.where(
                u < VIOLATION_SHARE + NOT_ACCESSIBLE_SHARE, INSPECTION_RESULTS.index("NOT_ACCESSIBLE"), 0
            ),
        )
        violation = rng.choice(len(VIOLATION_TYPES), n, p=VIOLATION_WEIGHTS)
        if co.planted is not None:  # a visit finds a planted bypass or tampered meter that is running
            result, violation = co.planted.found(co, customer, day * DAY_SECONDS, result, violation)
        is_violation = result == VIOLATION
        violation = np.where(is_violation, violation, -1)
        kwh_tenths = np.where(is_violation, np.rint(rng.lognormal(np.log(5600), 0.6, n)), 0).astype(np.int64)
        price = 2000 + rng.random(n) * 600  # đồng per kWh
        vnd = np.where(is_violation, np.rint(kwh_tenths / 10 * price), 0).astype(np.int64)
        return Inspections(
            month, day, self.region_of_customer[customer], customer, result, violation, kwh_tenths, vnd
        )

    # -- files ------------------------------------------------------------------------------------

    def write(self, mi: int) -> None:
        """The operations files of month `mi`."""
        self._write_requests(mi)
        self._write_inspections(mi)

    def _write_requests(self, mi: int) -> None:
        r = self.requests
        start, end = self.company.axis.month_bounds(mi)
        new = np.flatnonzero(r.month == mi)
        changed = np.flatnonzero((r.month < mi) & (r.closed >= start) & (r.closed < end))
        rows = np.concatenate([new, changed])
        closed_by_now = (r.closed[rows] >= 0) & (r.closed[rows] < end)
        closed = np.where(closed_by_now, r.closed[rows], -1)
        status = np.where(closed_by_now, r.status[rows], OPEN)
        known = r.customer[rows] >= 0
        ids = self.company.customers.ids.take(pa.array(np.where(known, r.customer[rows], 0)))
        customer = pc.if_else(pa.array(known), ids, pa.scalar(None, pa.string()))
        closed_text = seconds_text(np.maximum(closed, 0))
        table = pa.table(
            {
                "request_id": pa.array([_request_id(int(i)) for i in rows], pa.string()),
                "customer_id": customer,
                "region_code": _codes(self.company.network.region_codes, r.region[rows]),
                "request_type": _codes(REQUEST_TYPES, r.kind[rows]),
                "channel": _codes(REQUEST_CHANNELS, r.channel[rows]),
                "received_at": seconds_text(r.received[rows]),
                "due_at": seconds_text(r.due[rows]),
                "status": _codes(REQUEST_STATUSES, status),
                "closed_at": pa.array(
                    [t if k >= 0 else None for t, k in zip(closed_text.to_pylist(), closed, strict=True)],
                    pa.string(),
                ),
                "escalated": pa.array(np.where(r.escalated[rows], "true", "false").tolist(), pa.string()),
            }
        )
        broken = {"closed_at": "", "status": "RESOLVED"}
        self._deliver(mi, "service_requests", table, 44, "SRX", broken, "resolved_without_close")

    def _write_inspections(self, mi: int) -> None:
        s = self.inspections
        new = np.flatnonzero(s.month == mi)
        earlier = np.flatnonzero((s.month == mi - 1) & (s.result == VIOLATION))
        corrected = earlier[stream(self.company.seed, 43, mi).random(len(earlier)) < CORRECTED_SHARE]
        rows = np.concatenate([new, corrected])
        kwh, vnd = s.kwh_tenths[rows].copy(), s.vnd[rows].copy()
        if mi < self.company.n_months:
            # a violation corrected next month first goes out with other amounts
            later = stream(self.company.seed, 43, mi + 1)
            upcoming = np.flatnonzero((s.month[rows] == mi) & (s.result[rows] == VIOLATION))
            fixed = upcoming[later.random(len(upcoming)) < CORRECTED_SHARE]
            kwh[fixed] = kwh[fixed] * 8 // 10
            vnd[fixed] = vnd[fixed] * 8 // 10
        violation = s.result[rows] == VIOLATION
        table = pa.table(
            {
                "inspection_id": pa.array([f"IN{int(i):09d}" for i in rows], pa.string()),
                "customer_id": self.company.customers.ids.take(pa.array(s.customer[rows])),
                "region_code": _codes(self.company.network.region_codes, s.region[rows]),
                "inspected_on": days_text(s.day[rows]),
                "result": _codes(INSPECTION_RESULTS, s.result[rows]),
                "violation_type": pa.array(
                    [VIOLATION_TYPES[v] if v >= 0 else None for v in s.violation[rows]], pa.string()
                ),
                "recovered_kwh": pa.array(
                    [str(Decimal(int(k)) / 10) if v else None for k, v in zip(kwh, violation, strict=True)],
                    pa.string(),
                ),
                "recovered_vnd": pa.array(
                    [str(int(m)) if v else None for m, v in zip(vnd, violation, strict=True)], pa.string()
                ),
            }
        )
        broken = {"result": "VIOLATION", "violation_type": ""}
        self._deliver(mi, "inspections", table, 45, "INX", broken, "violation_without_type")

    def _deliver(
        self,
        mi: int,
        dataset: str,
        table: pa.Table,
        purpose: int,
        prefix: str,
        broken: dict[str, str],
        fault: str,
    ) -> None:
        """Write month `mi`'s file of `dataset` with a few rows broken as `broken` says (logged as `fault`);
        a month with nothing to deliver sends no file."""
        if not table.num_rows:
            return
        extras = self._bad_rows(mi, purpose, table, table.column_names[0], prefix, broken)
        period = str(self.company.axis.months[mi])
        name = f"operations/{dataset}_{period.replace('-', '')}01.csv"
        record = self.landing.put(name, period, table, extras=extras, quarantined=len(extras))
        for line in extra_line_numbers(extras):
            self.faults.add(fault, dataset, "quarantine", file=record.path, line=line)

    def _bad_rows(
        self, mi: int, purpose: int, table: pa.Table, key: str, prefix: str, broken: dict[str, str]
    ) -> list[Extra]:
        """A few rows that break a row rule, under keys no valid row has (quarantined, counted nowhere)."""
        if self.company.fault_rate <= 0 or table.num_rows < 10:
            return []
        rng = stream(self.company.seed, purpose, mi)
        extras = []
        for n in range(1 + rng.poisson(self.company.fault_rate * 20)):
            at = int(rng.integers(0, table.num_rows))
            row = {k: "" if v is None else str(v) for k, v in table.slice(at, 1).to_pylist()[0].items()}
            row |= {key: f"{prefix}{mi:04d}{n:06d}", **broken}
            extras.append(Extra(at, row_text(list(row.values()))))
        return extras

    # -- truth ------------------------------------------------------------------------------------

    def calendar(self) -> tuple[list[str], list[str]]:
        """The marts' periods (first to last month with an operations timestamp) and region codes."""
        r, s = self.requests, self.inspections
        months = self.company.axis.months
        closed_month = np.searchsorted(self._month_starts(), r.closed[r.closed >= 0], side="right") - 1
        used = np.concatenate([r.month, closed_month, s.month])
        if not len(used):
            return [], []  # a company too small to have any request or inspection: no operations rows
        periods = [str(m) for m in months[used.min() : used.max() + 1]]
        regions = sorted(
            {self.company.network.region_codes[int(k)] for k in np.concatenate([r.region, s.region])}
        )
        return periods, regions

    def _month_starts(self) -> np.ndarray:
        return np.array([seconds(m) for m in self.company.axis.months], dtype=np.int64)

    def service_truth(self) -> pa.Table:
        """mart_service_monthly by its definitions, from every request's final state."""
        r = self.requests
        periods, regions = self.calendar()
        codes = np.array(self.company.network.region_codes)[r.region]
        rows: dict[str, list] = {c: [] for c in SERVICE_TYPES}
        for scope in ["ALL", *regions]:
            mine = np.ones(len(codes), bool) if scope == "ALL" else codes == scope
            ytd = {"received": 0, "resolved": 0, "on_time": 0}
            for period in periods:
                start, end = _bounds(period)
                if period.endswith("-01"):
                    ytd = dict.fromkeys(ytd, 0)
                received = mine & (r.received >= start) & (r.received < end)
                closed_in = (r.closed >= start) & (r.closed < end)
                resolved = mine & (r.status == RESOLVED) & closed_in
                on_time = resolved & (r.closed <= r.due)
                backlog = mine & (r.received < end) & ((r.closed < 0) | (r.closed >= end))
                ytd["received"] += int(received.sum())
                ytd["resolved"] += int(resolved.sum())
                ytd["on_time"] += int(on_time.sum())
                values = {
                    "period": period,
                    "region_code": scope,
                    "requests_received": int(received.sum()),
                    "requests_resolved": int(resolved.sum()),
                    "resolved_on_time": int(on_time.sum()),
                    "on_time_pct": _pct(int(on_time.sum()), int(resolved.sum())),
                    "backlog_end": int(backlog.sum()),
                    "overdue_end": int((backlog & (r.due < end)).sum()),
                    "escalated": int((received & r.escalated).sum()),
                    "requests_received_ytd": ytd["received"],
                    "on_time_ytd_pct": _pct(ytd["on_time"], ytd["resolved"]),
                }
                for name, value in values.items():
                    rows[name].append(value)
        return pa.table({name: pa.array(values, SERVICE_TYPES[name]) for name, values in rows.items()})

    def service_mix_truth(self) -> pa.Table:
        """mart_service_mix_monthly: per period, type and channel, received, resolved and on time."""
        r = self.requests
        months = np.array([str(m) for m in self.company.axis.months])
        closed_month = np.searchsorted(self._month_starts(), r.closed, side="right") - 1
        counts: dict[tuple[str, str, str], list[int]] = {}
        for i in range(len(r.month)):
            kind, channel = REQUEST_TYPES[r.kind[i]], REQUEST_CHANNELS[r.channel[i]]
            counts.setdefault((months[r.month[i]], kind, channel), [0, 0, 0])[0] += 1
            if r.status[i] == RESOLVED:
                row = counts.setdefault((months[closed_month[i]], kind, channel), [0, 0, 0])
                row[1] += 1
                row[2] += int(r.closed[i] <= r.due[i])
        keys = sorted(counts)
        return pa.table(
            {
                "period": pa.array([k[0] for k in keys], pa.string()),
                "request_type": pa.array([k[1] for k in keys], pa.string()),
                "channel": pa.array([k[2] for k in keys], pa.string()),
                "requests_received": pa.array([counts[k][0] for k in keys], pa.int64()),
                "requests_resolved": pa.array([counts[k][1] for k in keys], pa.int64()),
                "resolved_on_time": pa.array([counts[k][2] for k in keys], pa.int64()),
            }
        )

    def inspections_truth(self) -> pa.Table:
        """mart_inspections_monthly by its definitions, from every inspection's final state."""
        s = self.inspections
        periods, regions = self.calendar()
        codes = np.array(self.company.network.region_codes)[s.region]
        month_of = np.array([str(m) for m in self.company.axis.months])[s.month]
        rows: dict[str, list] = {c: [] for c in INSPECTION_TYPES}
        for scope in ["ALL", *regions]:
            mine = np.ones(len(codes), bool) if scope == "ALL" else codes == scope
            ytd = {"inspections": 0, "violations": 0, "vnd": 0}
            for period in periods:
                if period.endswith("-01"):
                    ytd = dict.fromkeys(ytd, 0)
                here = mine & (month_of == period)
                violations = here & (s.result == VIOLATION)
                vnd = int(s.vnd[violations].sum())
                ytd["inspections"] += int(here.sum())
                ytd["violations"] += int(violations.sum())
                ytd["vnd"] += vnd
                values = {
                    "period": period,
                    "region_code": scope,
                    "inspections": int(here.sum()),
                    "violations": int(violations.sum()),
                    "hit_rate_pct": _pct(int(violations.sum()), int(here.sum())),
                    "recovered_kwh": Decimal(int(s.kwh_tenths[violations].sum())) / 10,
                    "recovered_vnd": Decimal(vnd),
                    "inspections_ytd": ytd["inspections"],
                    "violations_ytd": ytd["violations"],
                    "recovered_vnd_ytd": Decimal(ytd["vnd"]),
                }
                for name, value in values.items():
                    rows[name].append(value)
        return pa.table({name: pa.array(values, INSPECTION_TYPES[name]) for name, values in rows.items()})


DEC = pa.decimal128(38, 6)
SERVICE_TYPES: dict[str, pa.DataType] = {
    "period": pa.string(),
    "region_code": pa.string(),
    "requests_received": pa.int64(),
    "requests_resolved": pa.int64(),
    "resolved_on_time": pa.int64(),
    "on_time_pct": pa.float64(),
    "backlog_end": pa.int64(),
    "overdue_end": pa.int64(),
    "escalated": pa.int64(),
    "requests_received_ytd": pa.int64(),
    "on_time_ytd_pct": pa.float64(),
}
INSPECTION_TYPES: dict[str, pa.DataType] = {
    "period": pa.string(),
    "region_code": pa.string(),
    "inspections": pa.int64(),
    "violations": pa.int64(),
    "hit_rate_pct": pa.float64(),
    "recovered_kwh": DEC,
    "recovered_vnd": DEC,
    "inspections_ytd": pa.int64(),
    "violations_ytd": pa.int64(),
    "recovered_vnd_ytd": DEC,
}


def _request_id(index: int) -> str:
    return f"SR{index:09d}"


def _codes(names: tuple[str, ...] | list[str], index: np.ndarray) -> pa.Array:
    return pa.array(list(names), pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def _bounds(period: str) -> tuple[int, int]:
    month = np.datetime64(period, "M")
    return seconds(month), seconds(month + 1)


def _pct(part: int, whole: int) -> float | None:
    return float(Decimal(part) * 100 / Decimal(whole)) if whole else None
