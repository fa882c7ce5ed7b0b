"""Monthly billing exports (bill lines) and the payments that follow them.

One export a month, `CIS-YYYY-MM-R1` version 1, holding the bills whose reading period ends in the
month, plus adjustment bills correcting some of last month's bills. One month's export is re-issued
as version 2 a few weeks later: version 1 had some bills wrong. Payments follow each bill a few days
to weeks after issue; the share of households paying without cash rises month by month.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.contract import CHANNELS, COMPONENTS
from etl.synth.calendar import DAY_SECONDS, RESIDENTIAL, days_in_month, seconds
from etl.synth.company import CASH_CHANNELS, CASHLESS_CHANNELS, Company, stream
from etl.synth.faults import FaultLog
from etl.synth.registers import Bills
from etl.synth.tariff import TARIFF_CODES, TOU_COMPONENTS, Lines, bill_lines, money
from etl.synth.writer import (
    Extra,
    Landing,
    centi_or_whole,
    days_text,
    extra_line_numbers,
    row_text,
    seconds_text,
)

MALFORMED_BILLS = ("bad_enum", "bad_date", "wrong_field_count", "negative_regular_kwh")
CASHLESS_FROM = np.datetime64("2024-01", "M")
CASHLESS_START, CASHLESS_MONTHS = 0.84, 20  # household cashless share: 84% in 2024-01, 99% 20 months later
CASHLESS_END = 0.99  # a few households keep paying cash, so "who still pays in cash" has an answer
_COMPONENT_NAMES = pa.array(COMPONENTS, pa.string())
_CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}
CASH_IDX = np.array([_CHANNEL_INDEX[c] for c in CASH_CHANNELS])
CASHLESS_IDX = np.array([_CHANNEL_INDEX[c] for c in CASHLESS_CHANNELS])


@dataclass
class Export:
    """One export version's lines (final bills and adjustments), ready to write."""

    bill_id: pa.Array  # per line
    cust: np.ndarray
    period: pa.Array  # billing_period per line
    bill_type: np.ndarray  # 0 REGULAR, 1 ADJUSTMENT
    start_day: np.ndarray
    end_day: np.ndarray
    tariff: np.ndarray
    component: np.ndarray
    centi_kwh: np.ndarray
    price: np.ndarray
    amount: np.ndarray
    vat: np.ndarray
    issued_day: np.ndarray
    line_no: np.ndarray


@dataclass
class BillTotals:
    """Per bill that customers pay: id, customer, issue day and amount including VAT."""

    bill_id: pa.Array
    cust: np.ndarray
    issued_day: np.ndarray
    total: np.ndarray


@dataclass
class Payments:
    """Scheduled payments, one row each: bill, customer, time paid, amount (with VAT), sequence."""

    bill: pa.Array
    cust: np.ndarray
    paid: np.ndarray
    amount: np.ndarray
    id: np.ndarray

    def where(self, mask: np.ndarray) -> Payments:
        return Payments(
            self.bill.filter(pa.array(mask)),
            self.cust[mask],
            self.paid[mask],
            self.amount[mask],
            self.id[mask],
        )

    def take(self, order: np.ndarray) -> Payments:
        return Payments(
            self.bill.take(pa.array(order)),
            self.cust[order],
            self.paid[order],
            self.amount[order],
            self.id[order],
        )

    @staticmethod
    def concat(parts: list[Payments]) -> Payments:
        return Payments(
            pa.concat_arrays([p.bill for p in parts]),
            *(np.concatenate([getattr(p, k) for p in parts]) for k in ("cust", "paid", "amount", "id")),
        )


@dataclass
class BillingTruth:
    """What the final export versions say, per billing month: kWh and revenue per customer."""

    kwh: dict[int, np.ndarray] = field(default_factory=dict)  # centi-kWh per customer
    revenue: dict[int, np.ndarray] = field(default_factory=dict)
    billed: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class PaymentTruth:
    """Per paid month: amount per customer, its cashless part, and whether any payment was cash."""

    amount: dict[int, np.ndarray] = field(default_factory=dict)
    cashless: dict[int, np.ndarray] = field(default_factory=dict)
    paid_cash: dict[int, np.ndarray] = field(default_factory=dict)
    paying: dict[int, np.ndarray] = field(default_factory=dict)


def household_cashless_share(month: np.datetime64) -> float:
    k = (month - CASHLESS_FROM).astype(int)
    share = CASHLESS_START + (CASHLESS_END - CASHLESS_START) * k / CASHLESS_MONTHS
    return float(np.clip(share, 0.0, CASHLESS_END))


def _line_numbers(bill: np.ndarray) -> np.ndarray:
    first = np.searchsorted(bill, bill)
    return np.arange(len(bill)) - first + 1


class Billing:
    """Builds and writes each month's export, adjustments and payments; keeps the truth."""

    def __init__(self, company: Company, landing: Landing, faults: FaultLog) -> None:
        self.company = company
        self.landing = landing
        self.faults = faults
        self.truth = BillingTruth()
        self.paid = PaymentTruth()
        self.previous: tuple[Bills, pa.Array, Lines] | None = None
        self.pending: list[Payments] = []
        self.next_payment = 1
        n = company.n_months
        self.reissue_month = (n + 1) // 2 if company.fault_rate > 0 else -1
        self.range_end = company.axis.month_bounds(n)[1]

    def month(self, mi: int, bills: Bills) -> None:
        """Price the month's bills, write its export(s) and the payments made in the month."""
        co = self.company
        c = co.customers
        period = str(co.axis.months[mi])
        ym = period.replace("-", "")
        rng = stream(co.seed, 30, mi)
        start_day = bills.start // DAY_SECONDS
        end_day = bills.end // DAY_SECONDS
        tariff = c.tariff[bills.cust]
        lines = bill_lines(tariff, start_day, end_day, bills.centi_kwh)
        ids = c.ids.take(pa.array(bills.cust))
        bill_ids = pc.binary_join_element_wise(ids, f"-{ym}-", pa.array(bills.seq).cast(pa.string()), "")
        last_day = seconds(co.axis.months[mi] + 1) // DAY_SECONDS - 1
        issued = np.minimum(end_day + 1, last_day)
        export = Export(
            bill_id=bill_ids.take(pa.array(lines.bill)),
            cust=bills.cust[lines.bill],
            period=pa.array([period] * len(lines), pa.string()),
            bill_type=np.zeros(len(lines), dtype=np.int8),
            start_day=start_day[lines.bill],
            end_day=end_day[lines.bill],
            tariff=tariff[lines.bill],
            component=lines.component,
            centi_kwh=lines.centi_kwh,
            price=lines.price,
            amount=lines.amount,
            vat=lines.vat,
            issued_day=issued[lines.bill],
            line_no=_line_numbers(lines.bill),
        )
        adjust = self._adjustments(mi, rng)
        final = _concat(export, adjust) if adjust is not None else export
        self._account(mi, final)
        export_id = f"CIS-{period}-R1"
        if mi == self.reissue_month:
            first = self._spoil(mi, final, rng)
            self._write_export(mi, first, export_id, 1, rng)
            later = co.axis.months[min(mi + 1, co.n_months)]
            name_day = f"{str(later).replace('-', '')}{15 if mi < co.n_months else days_in_month(later):02d}"
            record = self._write_export(mi, final, export_id, 2, rng, name_day=name_day, close=str(later))
            self.faults.add(
                "reissued_export", "bill_lines", "higher_version_replaces", file=record, key=export_id
            )
        else:
            self._write_export(mi, final, export_id, 1, rng)
        self.previous = (bills, bill_ids, lines)
        self._payments(mi, _totals(final), rng)

    def _adjustments(self, mi: int, rng: np.random.Generator) -> Export | None:
        """Signed corrections of some of last month's bills, at the marginal line's price."""
        if self.previous is None or self.company.fault_rate <= 0:
            return None
        bills, bill_ids, lines = self.previous
        n = max(1, round(self.company.fault_rate * 0.1 * len(bills)))
        chosen = np.sort(rng.choice(len(bills), min(n, len(bills)), replace=False))
        # the last BLOCK_n, NORMAL or FLAT line of each bill carries the adjustment
        marginal = np.full(len(bills), -1)
        eligible = ~np.isin(lines.component, TOU_COMPONENTS[1:])
        marginal[lines.bill[eligible]] = np.flatnonzero(eligible)  # later lines overwrite earlier ones
        line = marginal[chosen]
        residential = self.company.customers.klass[bills.cust[chosen]] == RESIDENTIAL
        size = np.maximum(np.abs(bills.centi_kwh[chosen, 0]) * rng.uniform(0.05, 0.3, len(chosen)), 100)
        size = np.where(residential, np.round(size / 100) * 100, np.round(size)).astype(np.int64)
        sign = np.where(np.arange(len(chosen)) % 3 == 0, -1, 1)  # every third one is a credit
        centi = sign * np.maximum(size, 100)
        price = lines.price[line]
        amount, vat = money(centi, price)
        ms, _ = self.company.axis.month_bounds(mi)
        issue = ms // DAY_SECONDS + min(19, days_in_month(self.company.axis.months[mi]) - 1)
        ids = pc.binary_join_element_wise(bill_ids.take(pa.array(chosen)), "-A1", "")
        self.faults.add_many("adjustment", "bill_lines", "count_signed", key=ids.to_pylist())
        return Export(
            bill_id=ids,
            cust=bills.cust[chosen],
            period=pa.array([str(self.company.axis.months[mi])] * len(chosen), pa.string()),
            bill_type=np.ones(len(chosen), dtype=np.int8),
            start_day=bills.start[chosen] // DAY_SECONDS,
            end_day=bills.end[chosen] // DAY_SECONDS,
            tariff=self.company.customers.tariff[bills.cust[chosen]],
            component=lines.component[line],
            centi_kwh=centi,
            price=price,
            amount=amount,
            vat=vat,
            issued_day=np.full(len(chosen), issue),
            line_no=np.ones(len(chosen), dtype=np.int64),
        )

    def _spoil(self, mi: int, final: Export, rng: np.random.Generator) -> Export:
        """Version 1 of the re-issued export: some bills billed 25% too much, one in the wrong month."""
        bills = pc.unique(final.bill_id.filter(pa.array(final.bill_type == 0)))
        n = max(2, round(self.company.fault_rate * 0.05 * len(bills)))
        wrong = sorted(
            bills.take(pa.array(rng.choice(len(bills), min(n, len(bills)), replace=False))).to_pylist()
        )
        hit = np.asarray(pc.is_in(final.bill_id, value_set=pa.array(wrong, pa.string())))
        spoiled = Export(
            **{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in final.__dict__.items()}
        )
        spoiled.centi_kwh = np.where(hit, final.centi_kwh * 5 // 4, final.centi_kwh)
        spoiled.centi_kwh = np.where(
            hit & (spoiled.centi_kwh % 100 != 0) & (final.centi_kwh % 100 == 0),
            spoiled.centi_kwh // 100 * 100,
            spoiled.centi_kwh,
        )
        spoiled.amount, spoiled.vat = money(spoiled.centi_kwh, final.price)
        if mi > 1:  # one bill counted in last month by mistake: version 2 moves it back
            previous = str(self.company.axis.months[mi - 1])
            moved = pc.equal(final.bill_id, wrong[0])
            spoiled.period = pc.if_else(moved, previous, final.period).cast(pa.string())
        for b in wrong:
            self.faults.add("reissued_bill", "bill_lines", "version_2_replaces", key=b)
        return spoiled

    def _write_export(
        self,
        mi: int,
        ex: Export,
        export_id: str,
        version: int,
        rng: np.random.Generator,
        name_day: str | None = None,
        close: str | None = None,
    ) -> str:
        co = self.company
        month = co.axis.months[mi]
        period = str(month)
        day = name_day or f"{period.replace('-', '')}{days_in_month(month):02d}"
        n = len(ex.cust)
        table = pa.table(
            {
                "export_id": pa.array([export_id] * n, pa.string()) if n else pa.array([], pa.string()),
                "export_version": pa.array(np.full(n, version, dtype=np.int64)),
                "billing_period": ex.period,
                "bill_id": ex.bill_id,
                "line_no": pa.array(ex.line_no, pa.int64()),
                "customer_id": co.customers.ids.take(pa.array(ex.cust)),
                "bill_type": pa.array(["REGULAR", "ADJUSTMENT"], pa.string()).take(pa.array(ex.bill_type)),
                "period_start": days_text(ex.start_day),
                "period_end": days_text(ex.end_day),
                "tariff_code": pa.array(TARIFF_CODES, pa.string()).take(pa.array(ex.tariff)),
                "component": _COMPONENT_NAMES.take(pa.array(ex.component)),
                "kwh": centi_or_whole(ex.centi_kwh, ex.centi_kwh % 100 == 0),
                "unit_price_vnd": pa.array(ex.price, pa.int64()),
                "amount_vnd": pa.array(ex.amount, pa.int64()),
                "vat_vnd": pa.array(ex.vat, pa.int64()),
                "issued_on": days_text(ex.issued_day),
            }
        )
        extras, kinds = self._malformed(mi, table, rng) if version == 1 else ([], [])
        name = f"billing/bill_lines_{day}_{export_id}_v{version}.csv.gz"
        record = self.landing.put(name, close or period, table, extras=extras, quarantined=len(extras))
        for kind, line in zip(kinds, extra_line_numbers(extras), strict=True):
            self.faults.add(kind, "bill_lines", "quarantine", file=record.path, line=line)
        return record.path

    def _malformed(self, mi: int, table: pa.Table, rng: np.random.Generator) -> tuple[list[Extra], list[str]]:
        """Broken copies of real lines (line_no 90+, so no real key is touched)."""
        rate = self.company.fault_rate
        if rate <= 0 or table.num_rows < 10:
            return [], []
        count = rng.poisson(rate * 50)
        kinds = list(MALFORMED_BILLS) if mi == 1 else [MALFORMED_BILLS[k] for k in rng.integers(0, 4, count)]
        positive = np.flatnonzero(np.asarray(pc.greater(table.column("amount_vnd"), 0)))
        extras = []
        for k, kind in enumerate(kinds):
            at = int(rng.choice(positive)) if len(positive) else 0
            row = {key: "" if v is None else str(v) for key, v in table.slice(at, 1).to_pylist()[0].items()}
            row["line_no"] = str(90 + k)
            if kind == "bad_enum":
                row["component"] = "BLOCK_7"
            elif kind == "bad_date":
                row["issued_on"] = row["issued_on"][:5] + "02-30"
            elif kind == "negative_regular_kwh":
                for col in ("kwh", "amount_vnd", "vat_vnd"):
                    row[col] = "-" + row[col]
            fields = list(row.values())
            extras.append(Extra(at + 1, row_text(fields[:-1] if kind == "wrong_field_count" else fields)))
        return extras, kinds

    def _account(self, mi: int, final: Export) -> None:
        n = len(self.company.customers)
        self.truth.kwh[mi] = np.bincount(final.cust, weights=final.centi_kwh, minlength=n).astype(np.int64)
        self.truth.revenue[mi] = np.bincount(final.cust, weights=final.amount, minlength=n).astype(np.int64)
        self.truth.billed[mi] = np.bincount(final.cust, minlength=n) > 0

    def _payments(self, mi: int, totals: BillTotals, rng: np.random.Generator) -> None:
        """Schedule payments of the month's bills; write those paid in the month."""
        payable = totals.total > 0
        n = int(payable.sum())
        cust = totals.cust[payable]
        delay = 1 + np.minimum(rng.gamma(2.0, 4.0, n), 40).astype(np.int64)
        paid = (totals.issued_day[payable] + delay) * DAY_SECONDS + 6 * 3600 + rng.integers(0, 16 * 3600, n)
        total = totals.total[payable]
        split = (rng.random(n) < 0.03) & (total >= 200_000)
        first = np.where(split, (total * rng.uniform(0.3, 0.7, n) // 1000 * 1000).astype(np.int64), total)
        later = paid + rng.integers(5, 21, n) * DAY_SECONDS
        bill = np.flatnonzero(payable)
        count = len(cust) + int(split.sum())
        self.pending.append(
            Payments(
                bill=pa.concat_arrays(
                    [totals.bill_id.take(pa.array(bill)), totals.bill_id.take(pa.array(bill[split]))]
                ),
                cust=np.concatenate([cust, cust[split]]),
                paid=np.concatenate([paid, later[split]]),
                amount=np.concatenate([first, total[split] - first[split]]),
                id=np.arange(self.next_payment, self.next_payment + count),
            )
        )
        self.next_payment += count
        self._write_payments(mi, rng)

    def _write_payments(self, mi: int, rng: np.random.Generator) -> None:
        co = self.company
        _, me = co.axis.month_bounds(mi)
        due = Payments.concat(self.pending)
        self.pending = [due.where((due.paid >= me) & (due.paid < self.range_end))]
        now = due.where(due.paid < me)
        now = now.take(np.lexsort((now.id, now.paid)))
        bill, cust, paid, amount, pid = now.bill, now.cust, now.paid, now.amount, now.id
        c = co.customers
        cashless = c.cash_u[cust] < household_cashless_share(co.axis.months[mi])
        channel = np.where(cashless, CASHLESS_IDX[c.cashless_channel[cust]], CASH_IDX[c.cash_channel[cust]])
        table = pa.table(
            {
                "payment_id": pc.binary_join_element_wise(
                    "PM", pc.utf8_lpad(pa.array(pid).cast(pa.string()), 10, "0"), ""
                ),
                "customer_id": c.ids.take(pa.array(cust)),
                "bill_id": bill,
                "amount_vnd": pa.array(amount, pa.int64()),
                "paid_at": seconds_text(paid, " "),
                "channel": pa.array(CHANNELS, pa.string()).take(pa.array(channel)),
            }
        )
        self._account_payments(mi, cust, amount, cashless)
        extras, kinds = [], []
        if co.fault_rate > 0 and table.num_rows >= 10:
            for n in range(1 if mi == 1 else rng.poisson(co.fault_rate * 20)):
                at = int(rng.integers(0, table.num_rows))
                row = {key: str(v) for key, v in table.slice(at, 1).to_pylist()[0].items()}
                row["payment_id"] = f"PX{mi:04d}{n:06d}"
                row["channel"] = "MOMO"
                extras.append(Extra(at, row_text(list(row.values()))))
                kinds.append("bad_enum")
        period = str(co.axis.months[mi])
        name = f"payments/payments_{period.replace('-', '')}01.csv"
        record = self.landing.put(name, period, table, extras=extras, quarantined=len(extras))
        for kind, line in zip(kinds, extra_line_numbers(extras), strict=True):
            self.faults.add(kind, "payments", "quarantine", file=record.path, line=line)
        self._broken_payment_files(mi, table)

    def _account_payments(self, mi: int, cust: np.ndarray, amount: np.ndarray, cashless: np.ndarray) -> None:
        n = len(self.company.customers)
        self.paid.amount[mi] = np.bincount(cust, weights=amount, minlength=n).astype(np.int64)
        self.paid.cashless[mi] = np.bincount(cust, weights=np.where(cashless, amount, 0), minlength=n).astype(
            np.int64
        )
        self.paid.paid_cash[mi] = np.bincount(cust, weights=~cashless, minlength=n) > 0
        self.paid.paying[mi] = np.bincount(cust, minlength=n) > 0

    def _broken_payment_files(self, mi: int, table: pa.Table) -> None:
        """A counter export without the channel column, and a legacy export that is not UTF-8."""
        co = self.company
        if co.fault_rate <= 0 or table.num_rows == 0:
            return
        period = str(co.axis.months[mi]).replace("-", "")
        sample = table.slice(0, min(20, table.num_rows))
        fresh = pc.binary_join_element_wise(
            "PZ", pa.array([f"{mi:04d}{i:06d}" for i in range(sample.num_rows)]), ""
        )
        sample = sample.set_column(0, "payment_id", fresh)
        if mi == 1:
            data = self.landing.csv_bytes(sample.drop_columns(["channel"]))
            path = self.landing.put_raw(
                f"payments/payments_{period}15_counter.csv",
                str(co.axis.months[mi]),
                data,
                rows=sample.num_rows,
                reason="missing required column channel",
            ).path
            self.faults.add("missing_column", "payments", "reject_file", file=path)
        if mi == min(2, co.n_months):
            # a legacy system writing Windows-1258: its Vietnamese letters are not valid UTF-8
            note = pa.array(["Nhân viên thu hóa đơn"] * sample.num_rows, pa.string())
            text = self.landing.csv_bytes(sample.append_column("note", note)).decode("utf-8")
            path = self.landing.put_raw(
                f"payments/payments_{period}20_legacy.csv",
                str(co.axis.months[mi]),
                text.encode("cp1258"),
                rows=sample.num_rows,
                reason="not valid UTF-8",
            ).path
            self.faults.add("not_utf8", "payments", "reject_file", file=path)


def _concat(a: Export, b: Export) -> Export:
    out = {}
    for k in a.__dict__:
        x, y = getattr(a, k), getattr(b, k)
        if isinstance(x, pa.Array):
            out[k] = pa.concat_arrays([x, y])
        else:
            out[k] = np.concatenate([x, y])
    return Export(**out)


def _totals(ex: Export) -> BillTotals:
    """Amount due per bill (lines are grouped by bill: regular bills first, then adjustments)."""
    ids = ex.bill_id
    change = (
        np.flatnonzero(np.asarray(pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)))) + 1
        if len(ids) > 1
        else np.array([], dtype=np.int64)
    )
    starts = np.concatenate([[0], change]).astype(np.int64) if len(ids) else np.array([], dtype=np.int64)
    due = ex.amount + ex.vat
    return BillTotals(
        bill_id=ids.take(pa.array(starts)),
        cust=ex.cust[starts],
        issued_day=ex.issued_day[starts],
        total=np.add.reduceat(due, starts) if len(starts) else due[:0],
    )
