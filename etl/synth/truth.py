"""Ground truth computed from what was generated (never by running meterflow's SQL).

Figures are exact integers while summed (hundredths of kWh, dong, millionths of recorded kWh) and
become DECIMAL(38,6) in the Parquet files; percentages are floats. Definitions follow CONTRACT.md §6:
final export versions plus adjustments, quarantined rows excluded; kWh received is the energy VEE must
reach on the BOUNDARY meters (company) or the FEEDER meters (regions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etl.contract import CUSTOMER_CLASSES
from etl.synth.billing import BillingTruth, PaymentTruth
from etl.synth.calendar import SEASON
from etl.synth.company import Company, stream
from etl.synth.faults import FaultLog
from etl.synth.intervals import BOUNDARY, DT, FEEDER, ROLES, IntervalMeters, MeterMonth
from etl.synth.tariff import TARIFF_CODES
from etl.synth.theft import THEFTS
from etl.synth.writer import Landing, scaled

DEC = pa.decimal128(38, 6)
ALL = "ALL"
_MICRO = Decimal("0.000001")


@dataclass
class Figures:
    """One period and region, exact."""

    kwh_centi: int = 0
    revenue: int = 0
    received_micro: int = 0  # what VEE must reach
    received_true_micro: int = 0
    paid: int = 0
    paid_cashless: int = 0
    payers: int = 0
    payers_all_cashless: int = 0

    @property
    def kwh(self) -> Decimal:
        return Decimal(self.kwh_centi) / 100

    @property
    def received(self) -> Decimal:
        return Decimal(self.received_micro) * _MICRO


class Truth:
    """Collects per-month truth while generating, then writes truth/ and the plans snapshots."""

    def __init__(self, company: Company, meters: IntervalMeters) -> None:
        self.company = company
        self.meters = meters
        self.meter_months: dict[int, MeterMonth] = {}
        c = company.customers
        self.final_dt = company.dt_in_month(company.n_months)
        self.region_of = company.network.dt_region[self.final_dt]
        self.regions = company.network.region_codes
        self.klass = c.klass

    def figures(self, billing: BillingTruth, paid: PaymentTruth) -> dict[str, dict[int, Figures]]:
        """Per region code (and ALL) and axis month."""
        out: dict[str, dict[int, Figures]] = {r: {} for r in [ALL, *self.regions]}
        im = self.meters
        n_r = len(self.regions)
        for mi in range(1, self.company.n_months + 1):
            kwh = np.bincount(self.region_of, weights=billing.kwh[mi], minlength=n_r)
            rev = np.bincount(self.region_of, weights=billing.revenue[mi], minlength=n_r)
            amount = np.bincount(self.region_of, weights=paid.amount[mi], minlength=n_r)
            cashless = np.bincount(self.region_of, weights=paid.cashless[mi], minlength=n_r)
            payers = np.bincount(self.region_of, weights=paid.paying[mi], minlength=n_r)
            clean = np.bincount(self.region_of, weights=paid.paying[mi] & ~paid.paid_cash[mi], minlength=n_r)
            mm = self.meter_months[mi]
            vee = mm.vee_micro * im.mult
            true = mm.true_micro * im.mult
            feeder = im.role == FEEDER
            recv = np.bincount(im.region[feeder], weights=vee[feeder], minlength=n_r)
            recv_true = np.bincount(im.region[feeder], weights=true[feeder], minlength=n_r)
            boundary = im.role == BOUNDARY
            out[ALL][mi] = Figures(
                int(billing.kwh[mi].sum()),
                int(billing.revenue[mi].sum()),
                int(vee[boundary].sum()),
                int(true[boundary].sum()),
                int(paid.amount[mi].sum()),
                int(paid.cashless[mi].sum()),
                int(paid.paying[mi].sum()),
                int((paid.paying[mi] & ~paid.paid_cash[mi]).sum()),
            )
            for r, code in enumerate(self.regions):
                out[code][mi] = Figures(
                    int(kwh[r]),
                    int(rev[r]),
                    int(recv[r]),
                    int(recv_true[r]),
                    int(amount[r]),
                    int(cashless[r]),
                    int(payers[r]),
                    int(clean[r]),
                )
        return out

    def plans(self, figures: dict[str, dict[int, Figures]]) -> pa.Table:
        """Annual targets derived from the year's data, like a plan a little ahead of the outcome."""
        months = self.company.axis.months
        rng = stream(self.company.seed, 40)
        rows = []
        for year in sorted({int(str(m)[:4]) for m in months[1:]}):
            mis = [mi for mi in range(1, len(months)) if int(str(months[mi])[:4]) == year]
            covered = np.isin(np.arange(1, 13), [int(str(months[mi])[5:]) for mi in mis])
            weight = SEASON * np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
            share = weight[covered].sum() / weight.sum()
            for region, series in figures.items():
                kwh = sum(series[mi].kwh for mi in mis)
                rev = sum(series[mi].revenue for mi in mis)
                recv = sum(series[mi].received for mi in mis)
                if kwh <= 0:
                    continue
                company = region == ALL
                annual = float(kwh) / share * (0.99 if company else rng.uniform(0.96, 1.01))
                price = float(rev / kwh) - (8.95 if company else rng.uniform(-20, 15))
                loss = (
                    float((recv - kwh) / recv * 100) + (1.04 if company else rng.uniform(0.5, 1.5))
                    if recv > 0
                    else None
                )
                rows.append((year, region, "KWH_SOLD", Decimal(round(annual / 1000) * 1000)))
                rows.append((year, region, "AVG_PRICE", Decimal(f"{price:.2f}")))
                if loss is not None:
                    rows.append((year, region, "LOSS_RATE", Decimal(f"{loss:.2f}")))
        return pa.table(
            {
                "year": pa.array([r[0] for r in rows], pa.int64()),
                "region_code": pa.array([r[1] for r in rows], pa.string()),
                "kpi": pa.array([r[2] for r in rows], pa.string()),
                "target": pa.array([r[3] for r in rows], pa.decimal128(18, 2)),
            }
        )

    def write_plans(self, plans: pa.Table, landing: Landing) -> None:
        """One snapshot per year, dated its first month in the range, listing every year so far."""
        months = self.company.axis.months
        years = plans.column("year").to_numpy()
        seen: set[int] = set()
        for mi in range(1, len(months)):
            year = int(str(months[mi])[:4])
            if year in seen:
                continue
            seen.add(year)
            part = plans.filter(pa.array(years <= year))
            stamp = str(months[mi]).replace("-", "") + "01"
            landing.put(f"reference/plans_{stamp}.csv", str(months[mi]), part, quoting="needed")

    def kpis(self, figures: dict[str, dict[int, Figures]], plans: pa.Table) -> pa.Table:
        """mart_kpi_monthly's figures per period and region (ALL = the company)."""
        target = {
            (y, r, k): Decimal(t)
            for y, r, k, t in zip(*(plans.column(c).to_pylist() for c in plans.column_names), strict=True)
        }
        months = self.company.axis.months
        cols: dict[str, list] = {name: [] for name in _KPI_TYPES}
        for region, series in figures.items():
            ytd: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
            for mi in range(1, len(months)):
                f = series[mi]
                year = int(str(months[mi])[:4])
                same_year = [m for m in range(1, mi + 1) if int(str(months[m])[:4]) == year]
                kwh_ytd = sum((series[m].kwh for m in same_year), Decimal(0))
                rev_ytd = sum((Decimal(series[m].revenue) for m in same_year), Decimal(0))
                recv_ytd = sum((series[m].received for m in same_year), Decimal(0))
                ytd[mi] = (kwh_ytd, rev_ytd, recv_ytd)
                before = ytd.get(mi - 12)
                price_ytd = _ratio(rev_ytd, kwh_ytd)
                loss_ytd = _loss(recv_ytd, kwh_ytd)
                plan_kwh = target.get((year, region, "KWH_SOLD"))
                plan_price = target.get((year, region, "AVG_PRICE"))
                plan_loss = target.get((year, region, "LOSS_RATE"))
                row = {
                    "period": str(months[mi]),
                    "region_code": region,
                    "kwh_sold": f.kwh,
                    "revenue_vnd": Decimal(f.revenue),
                    "avg_price_vnd_per_kwh": _ratio(Decimal(f.revenue), f.kwh),
                    "kwh_sold_ytd": kwh_ytd,
                    "revenue_ytd_vnd": rev_ytd,
                    "kwh_sold_ytd_yoy_pct": (float(kwh_ytd / before[0]) - 1) * 100
                    if before and before[0]
                    else None,
                    "plan_kwh_sold": plan_kwh,
                    "plan_attainment_pct": float(kwh_ytd / plan_kwh) * 100 if plan_kwh else None,
                    "avg_price_ytd_vnd_per_kwh": price_ytd,
                    "plan_avg_price_vnd_per_kwh": plan_price,
                    "avg_price_ytd_vs_plan_vnd": price_ytd - float(plan_price)
                    if plan_price is not None and price_ytd is not None
                    else None,
                    "avg_price_ytd_yoy_vnd": _minus(
                        price_ytd, _ratio(before[1], before[0]) if before else None
                    ),
                    "kwh_received": f.received,
                    "kwh_received_true": Decimal(f.received_true_micro) * _MICRO,
                    "kwh_received_exact": f.received_micro == f.received_true_micro,
                    "kwh_received_ytd": recv_ytd,
                    "loss_rate_pct": _loss(f.received, f.kwh),
                    "loss_rate_ytd_pct": loss_ytd,
                    "plan_loss_rate_pct": plan_loss,
                    "loss_rate_ytd_vs_plan_pts": loss_ytd - float(plan_loss)
                    if plan_loss is not None and loss_ytd is not None
                    else None,
                    "loss_rate_ytd_yoy_pts": _minus(
                        loss_ytd, _loss(before[2], before[0]) if before else None
                    ),
                    "cashless_customer_pct": f.payers_all_cashless / f.payers * 100 if f.payers else None,
                    "cashless_amount_pct": f.paid_cashless / f.paid * 100 if f.paid else None,
                    "paid_amount_vnd": Decimal(f.paid),
                    "paying_customers": f.payers,
                }
                for name, value in row.items():
                    cols[name].append(value)
        return pa.table({name: pa.array(values, _KPI_TYPES[name]) for name, values in cols.items()})

    def meter_monthly(self) -> pa.Table:
        """Per interval meter, channel and month: the energy VEE must reach, the true energy, interval
        counts. The ACTIVE_EXPORT channel of the meters with rooftop solar is never faulted."""
        im = self.meters
        parts = []
        for mi, mm in self.meter_months.items():
            n = len(im)
            vee = pa.array(mm.vee_micro * im.mult, pa.int64())
            parts.append(
                pa.table(
                    {
                        "period": pa.array([str(self.company.axis.months[mi])] * n, pa.string()),
                        "meter_id": pa.array(im.meter_id.tolist(), pa.string()),
                        "channel": pa.array(["ACTIVE_IMPORT"] * n, pa.string()),
                        "role": pa.array(ROLES).take(pa.array(im.role)),
                        "node_id": pa.array(im.node_id.tolist(), pa.string()),
                        "multiplier": pa.array(im.mult, pa.int64()),
                        "expected_intervals": pa.array(mm.expected, pa.int64()),
                        "actual_intervals": pa.array(
                            mm.expected - mm.upstream_estimated - mm.edited - mm.estimated - mm.missing,
                            pa.int64(),
                        ),
                        "upstream_estimated_intervals": pa.array(mm.upstream_estimated, pa.int64()),
                        "edited_intervals": pa.array(mm.edited, pa.int64()),
                        "estimated_intervals": pa.array(mm.estimated, pa.int64()),
                        "missing_intervals": pa.array(mm.missing, pa.int64()),
                        "recorded_kwh": _micro_decimal(pa.array(mm.vee_micro, pa.int64())),
                        "delivered_kwh": _micro_decimal(
                            pa.array(mm.vee_micro - mm.estimated_micro, pa.int64())
                        ),
                        "energy_kwh": _micro_decimal(vee),
                        "estimated_energy_kwh": _micro_decimal(
                            pa.array(mm.estimated_micro * im.mult, pa.int64())
                        ),
                        "true_energy_kwh": _micro_decimal(pa.array(mm.true_micro * im.mult, pa.int64())),
                        "recoverable": pa.array(mm.missing == 0),
                    }
                )
            )
            solar = np.flatnonzero(mm.export_expected > 0)
            if len(solar):
                k = len(solar)
                zero = pa.array(np.zeros(k, dtype=np.int64))
                export = _micro_decimal(pa.array(mm.export_micro[solar] * im.mult[solar], pa.int64()))
                parts.append(
                    pa.table(
                        {
                            "period": pa.array([str(self.company.axis.months[mi])] * k, pa.string()),
                            "meter_id": pa.array(im.meter_id[solar].tolist(), pa.string()),
                            "channel": pa.array(["ACTIVE_EXPORT"] * k, pa.string()),
                            "role": pa.array(ROLES).take(pa.array(im.role[solar])),
                            "node_id": pa.array(im.node_id[solar].tolist(), pa.string()),
                            "multiplier": pa.array(im.mult[solar], pa.int64()),
                            "expected_intervals": pa.array(mm.export_expected[solar], pa.int64()),
                            "actual_intervals": pa.array(mm.export_expected[solar], pa.int64()),
                            "upstream_estimated_intervals": zero,
                            "edited_intervals": zero,
                            "estimated_intervals": zero,
                            "missing_intervals": zero,
                            "recorded_kwh": _micro_decimal(pa.array(mm.export_micro[solar], pa.int64())),
                            "delivered_kwh": _micro_decimal(pa.array(mm.export_micro[solar], pa.int64())),
                            "energy_kwh": export,
                            "estimated_energy_kwh": _micro_decimal(zero),
                            "true_energy_kwh": export,
                            "recoverable": pa.array(np.ones(k, dtype=bool)),
                        }
                    )
                )
        return pa.concat_tables(parts)

    def meter_mart(self) -> pa.Table:
        """mart_meter_monthly per interval meter, channel and month: an edited interval is actual, the
        recorded quantity is what was delivered (the VEE figure less its estimates, before the multiplier)."""
        m = self.meter_monthly()
        actual = pa.array(m["actual_intervals"].to_numpy() + m["edited_intervals"].to_numpy(), pa.int64())
        return pa.table(
            {
                "period": m["period"],
                "meter_id": m["meter_id"],
                "channel": m["channel"],
                "role": m["role"],
                "unit": pa.array(["kWh"] * m.num_rows, pa.string()),
                "expected_intervals": m["expected_intervals"],
                "actual_intervals": actual,
                "upstream_estimated_intervals": m["upstream_estimated_intervals"],
                "estimated_intervals": m["estimated_intervals"],
                "missing_intervals": m["missing_intervals"],
                "recorded_qty": m["delivered_kwh"],
                "validated_qty": m["energy_kwh"],
            }
        )

    def sales(self, billing: BillingTruth) -> pa.Table:
        """mart_sales_monthly's figures: per period, region, class and tariff."""
        c = self.company.customers
        n_t, n_k = len(TARIFF_CODES), len(CUSTOMER_CLASSES)
        key = (self.region_of.astype(np.int64) * n_k + c.klass) * n_t + c.tariff
        size = len(self.regions) * n_k * n_t
        cols: dict[str, list] = {
            k: []
            for k in (
                "period",
                "region_code",
                "customer_class",
                "tariff_code",
                "kwh_sold",
                "revenue_vnd",
                "customers_billed",
            )
        }
        for mi in sorted(billing.kwh):
            kwh = np.bincount(key, weights=billing.kwh[mi], minlength=size).astype(np.int64)
            rev = np.bincount(key, weights=billing.revenue[mi], minlength=size).astype(np.int64)
            billed = np.bincount(key, weights=billing.billed[mi], minlength=size).astype(np.int64)
            for k in np.flatnonzero(billed):
                region, rest = divmod(int(k), n_k * n_t)
                klass, tariff = divmod(rest, n_t)
                cols["period"].append(str(self.company.axis.months[mi]))
                cols["region_code"].append(self.regions[region])
                cols["customer_class"].append(CUSTOMER_CLASSES[klass])
                cols["tariff_code"].append(TARIFF_CODES[tariff])
                cols["kwh_sold"].append(Decimal(int(kwh[k])) / 100)
                cols["revenue_vnd"].append(Decimal(int(rev[k])))
                cols["customers_billed"].append(int(billed[k]))
        types = {"kwh_sold": DEC, "revenue_vnd": DEC, "customers_billed": pa.int64()}
        return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})

    def energy_balance(self, billing: BillingTruth) -> pa.Table:
        """mart_energy_balance_monthly's kwh_in and kwh_billed per FEEDER and DT node."""
        net = self.company.network
        im = self.meters
        n_dt = len(net.dt_id)
        parts = []
        for mi, mm in self.meter_months.items():
            billed_dt = np.bincount(self.final_dt, weights=billing.kwh[mi], minlength=n_dt).astype(np.int64)
            billed_f = np.bincount(net.dt_feeder, weights=billed_dt, minlength=len(net.feeder_id)).astype(
                np.int64
            )
            rows = np.flatnonzero(im.role != BOUNDARY)
            is_dt = im.role[rows] == DT
            billed = np.where(
                is_dt,
                billed_dt[np.where(is_dt, im.node[rows], 0)],
                billed_f[np.where(is_dt, 0, im.node[rows])],
            )
            n = len(rows)
            # net of the rooftop solar some DTs send back (CONTRACT.md §6 v2)
            kwh_in = (mm.vee_micro[rows] - mm.export_micro[rows]) * im.mult[rows]
            estimated = mm.estimated_micro[rows] * im.mult[rows]
            loss = kwh_in - billed * 10_000  # micro-kWh
            parts.append(
                pa.table(
                    {
                        "period": pa.array([str(self.company.axis.months[mi])] * n, pa.string()),
                        "node_id": pa.array(im.node_id[rows].tolist(), pa.string()),
                        "node_type": pa.array(ROLES).take(pa.array(im.role[rows])),
                        "region_code": pa.array(net.region_codes).take(pa.array(im.region[rows])),
                        "kwh_in": _micro_decimal(pa.array(kwh_in, pa.int64())),
                        "kwh_billed": _centi_decimal(billed),
                        "loss_kwh": _micro_decimal(pa.array(loss, pa.int64())),
                        "loss_rate_pct": _percentages(loss, kwh_in),
                        "estimated_share_pct": _percentages(estimated, kwh_in),
                    }
                )
            )
        return pa.concat_tables(parts)

    def true_consumption(self, mi: int) -> np.ndarray:
        """Each customer's true use in axis month `mi` (kWh, float): what the DT carries, whatever the meter
        recorded (a bypassed meter records less)."""
        co = self.company
        c = co.customers
        ms, me = co.axis.month_bounds(mi)
        lo = np.maximum(ms, c.conn)
        hi = np.maximum(lo, np.minimum(me, c.disc))
        whole = co.shapes.cumulative(c.klass, hi) - co.shapes.cumulative(c.klass, lo)
        return np.asarray(c.base * co.monthly_factor(mi) * whole.sum(axis=1))

    def metered_consumption(self, mi: int) -> np.ndarray:
        """Each customer's use in axis month `mi` as the meter records it (kWh, float)."""
        use = self.true_consumption(mi)
        planted = self.company.planted
        return use if planted is None else use * planted.recorded_factor(self.company, mi)

    def calendar_balance(self) -> tuple[pa.Table, pa.Table]:
        """truth/balance_calendar (per month and FEEDER or DT node, customers by their newest DT) and
        truth/kpis_calendar (per month, the company): kwh_in as VEE must produce it, the customers' true
        calendar-month use and what their meters recorded of it, the loss rate against what was recorded
        (`loss_rate_true_pct`, the figure the calendar-month balance estimates: technical losses and theft),
        and the planted thefts running on the node by the month's end."""
        co = self.company
        net = co.network
        im = self.meters
        n_dt, n_f = len(net.dt_id), len(net.feeder_id)
        planted = co.planted
        nodes, company_rows = [], []
        for mi, mm in self.meter_months.items():
            period = str(co.axis.months[mi])
            _, me = co.axis.month_bounds(mi)
            use = self.true_consumption(mi)
            metered = self.metered_consumption(mi)
            dt_use = np.bincount(self.final_dt, weights=use, minlength=n_dt)
            f_use = np.bincount(net.dt_feeder, weights=dt_use, minlength=n_f)
            dt_metered = np.bincount(self.final_dt, weights=metered, minlength=n_dt)
            f_metered = np.bincount(net.dt_feeder, weights=dt_metered, minlength=n_f)
            thefts = np.zeros(n_dt, dtype=np.int64)
            if planted is not None:
                on = np.isin(planted.kind, THEFTS) & (planted.start < me)
                dts = np.where(
                    planted.cust[on] >= 0, self.final_dt[np.maximum(planted.cust[on], 0)], planted.dt[on]
                )
                thefts = np.bincount(dts, minlength=n_dt)
            f_thefts = np.bincount(net.dt_feeder, weights=thefts, minlength=n_f).astype(np.int64)
            kwh_in = mm.vee_micro * im.mult / 1e6
            rows = np.flatnonzero(im.role != BOUNDARY)
            is_dt = im.role[rows] == DT
            node = im.node[rows]
            consumed = np.where(is_dt, dt_use[np.where(is_dt, node, 0)], f_use[np.where(is_dt, 0, node)])
            recorded = np.where(
                is_dt, dt_metered[np.where(is_dt, node, 0)], f_metered[np.where(is_dt, 0, node)]
            )
            theft = np.where(is_dt, thefts[np.where(is_dt, node, 0)], f_thefts[np.where(is_dt, 0, node)])
            nodes.append(
                pa.table(
                    {
                        "period": pa.array([period] * len(rows), pa.string()),
                        "node_id": pa.array(im.node_id[rows].tolist(), pa.string()),
                        "node_type": pa.array(ROLES).take(pa.array(im.role[rows])),
                        "kwh_in": pa.array(kwh_in[rows], pa.float64()),
                        "kwh_consumed_true": pa.array(consumed, pa.float64()),
                        "kwh_metered_true": pa.array(recorded, pa.float64()),
                        "loss_rate_true_pct": pa.array(_rates(kwh_in[rows], recorded), pa.float64()),
                        "loss_rate_technical_pct": pa.array(_rates(kwh_in[rows], consumed), pa.float64()),
                        "planted_thefts": pa.array(theft, pa.int64()),
                    }
                )
            )
            boundary = float(kwh_in[im.role == BOUNDARY].sum())
            total = float(metered.sum())
            company_rows.append(
                (
                    period,
                    boundary,
                    float(use.sum()),
                    total,
                    (boundary - total) / boundary * 100 if boundary else None,
                )
            )
        kpis = pa.table(
            {
                "period": pa.array([r[0] for r in company_rows], pa.string()),
                "kwh_received": pa.array([r[1] for r in company_rows], pa.float64()),
                "kwh_consumed_true": pa.array([r[2] for r in company_rows], pa.float64()),
                "kwh_metered_true": pa.array([r[3] for r in company_rows], pa.float64()),
                "loss_rate_true_pct": pa.array([r[4] for r in company_rows], pa.float64()),
            }
        )
        return pa.concat_tables(nodes), kpis


def _rates(kwh_in: np.ndarray, consumed: np.ndarray) -> list[float | None]:
    return [float((i - c) / i * 100) if i else None for i, c in zip(kwh_in, consumed, strict=True)]


def _micro_decimal(values: pa.Array) -> pa.Array:
    return scaled(values, 6).cast(DEC)


def _centi_decimal(values: np.ndarray) -> pa.Array:
    return scaled(values, 2).cast(DEC)


def _percentages(part: np.ndarray, whole: np.ndarray) -> pa.Array:
    """part / whole x 100 per element, exact until the division; NULL where whole is 0."""
    ratios = [_ratio(Decimal(int(p)) * 100, Decimal(int(w))) for p, w in zip(part, whole, strict=True)]
    return pa.array(ratios, pa.float64())


def _ratio(num: Decimal, den: Decimal) -> float | None:
    return float(num / den) if den else None


def _loss(received: Decimal, sold: Decimal) -> float | None:
    return float((received - sold) / received * 100) if received else None


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


_KPI_TYPES: dict[str, pa.DataType] = {
    "period": pa.string(),
    "region_code": pa.string(),
    "kwh_sold": DEC,
    "revenue_vnd": DEC,
    "avg_price_vnd_per_kwh": pa.float64(),
    "kwh_sold_ytd": DEC,
    "revenue_ytd_vnd": DEC,
    "kwh_sold_ytd_yoy_pct": pa.float64(),
    "plan_kwh_sold": DEC,
    "plan_attainment_pct": pa.float64(),
    "avg_price_ytd_vnd_per_kwh": pa.float64(),
    "plan_avg_price_vnd_per_kwh": DEC,
    "avg_price_ytd_vs_plan_vnd": pa.float64(),
    "avg_price_ytd_yoy_vnd": pa.float64(),
    "kwh_received": DEC,
    "kwh_received_true": DEC,
    "kwh_received_exact": pa.bool_(),
    "kwh_received_ytd": DEC,
    "loss_rate_pct": pa.float64(),
    "loss_rate_ytd_pct": pa.float64(),
    "plan_loss_rate_pct": DEC,
    "loss_rate_ytd_vs_plan_pts": pa.float64(),
    "loss_rate_ytd_yoy_pts": pa.float64(),
    "cashless_customer_pct": pa.float64(),
    "cashless_amount_pct": pa.float64(),
    "paid_amount_vnd": DEC,
    "paying_customers": pa.int64(),
}


def write_truth(folder: Path, tables: dict[str, pa.Table], landing: Landing, faults: FaultLog) -> None:
    """truth/*.parquet, drops.json, summary.json (rows and expected quarantine per landing file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    pq.write_table(faults.table(), folder / "faults.parquet")
    (folder / "drops.json").write_text(json.dumps(landing.drops(), indent=1) + "\n", encoding="utf-8")
    files = {
        r.path: {
            "dataset": r.dataset,
            "close": r.close,
            "rows": r.rows,
            "quarantined": r.quarantined,
            "status": r.status,
            "reason": r.reason,
            "bytes": r.size,
        }
        for r in landing.records
    }
    datasets: dict[str, dict[str, int]] = {}
    for r in landing.records:
        d = datasets.setdefault(r.dataset, {"files": 0, "rows": 0, "quarantined": 0, "rejected_files": 0})
        d["files"] += 1
        d["rows"] += r.rows
        d["quarantined"] += r.quarantined
        d["rejected_files"] += r.status != "INGESTED"
    summary = {"datasets": dict(sorted(datasets.items())), "files": files}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
