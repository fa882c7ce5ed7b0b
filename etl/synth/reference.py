"""Reference snapshots: customers, meters, network, tariffs and plans, as of their snapshot dates.

Customers and meters get a snapshot at the start of the range and at the end of every month with
events (connections, disconnections, moves, meter changes); a move shows in the snapshot of the month
before it takes effect. Tariffs get a snapshot whenever a price version starts; the network one at the
start and one in the first January after it (a few transformers renamed).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.contract import CUSTOMER_CLASSES, DATASETS
from etl.synth.calendar import DAY_SECONDS, days_in_month, seconds
from etl.synth.company import NEVER, Company, stream
from etl.synth.intervals import ROLES, IntervalMeters
from etl.synth.tariff import TARIFF_CODES, VERSION_STARTS, tariff_rows
from etl.synth.writer import Landing, days_text, milli

_BOM = b"\xef\xbb\xbf"


def _dates(t: np.ndarray) -> pa.Array:
    """Seconds as 'YYYY-MM-DD', NULL where the event has not happened (NEVER)."""
    dates = days_text(np.where(t >= NEVER, 0, t // DAY_SECONDS))
    return pc.if_else(pa.array(t >= NEVER), pa.scalar(None, pa.date32()), dates)


def _columns(dataset: str, table: pa.Table) -> pa.Table:
    return table.select(list(DATASETS[dataset].column_names))


def snapshots(company: Company) -> list[tuple[int, str, int, int]]:
    """Customers and meters snapshots: (axis month, 'YYYYMMDD', state as of (seconds), DT month).

    The first is taken at the start of the range; the others at the end of each month with events,
    showing the moves that take effect the next day.
    """
    months = company.axis.months
    out = [(1, str(months[1]).replace("-", "") + "01", seconds(months[1]), 1)]
    for mi in company.events.event_months:
        stamp = f"{str(months[mi]).replace('-', '')}{days_in_month(months[mi]):02d}"
        out.append((mi, stamp, seconds(months[mi] + 1) - 1, mi + 1))
    return out


def customers_table(company: Company, as_of: int, dt: np.ndarray) -> pa.Table:
    """Customers connected by `as_of` (seconds), on their transformer `dt`."""
    c = company.customers
    net = company.network
    rows = np.flatnonzero(c.conn <= as_of)
    take = pa.array(rows)
    disc = np.where(c.disc[rows] <= as_of, c.disc[rows], NEVER)
    return _columns(
        "customers",
        pa.table(
            {
                "customer_id": c.ids.take(take),
                "customer_name": c.name.take(take),
                "address": c.address.take(take),
                "phone": c.phone.take(take),
                "customer_class": pa.array(CUSTOMER_CLASSES).take(pa.array(c.klass[rows])),
                "tariff_code": pa.array(TARIFF_CODES).take(pa.array(c.tariff[rows])),
                "region_code": pa.array(net.region_codes).take(pa.array(net.dt_region[dt[rows]])),
                "dt_id": pa.array(net.dt_id[dt[rows]].tolist(), pa.string()),
                "connected_on": _dates(c.conn[rows]),
                "disconnected_on": _dates(disc),
            }
        ),
    )


def meters_table(company: Company, interval: IntervalMeters, as_of: int) -> pa.Table:
    """Interval meters, then every customer meter installed by `as_of` (seconds)."""
    c = company.customers
    m = company.meters
    rows = np.flatnonzero(m.installed <= as_of)
    removed = np.where(m.removed[rows] <= as_of, m.removed[rows], NEVER)
    cust = m.cust[rows]
    n_i = len(interval)
    null = pa.nulls(len(rows), pa.string())
    no_limit = pa.nulls(len(rows), pa.decimal128(23, 3))
    customer_part = pa.table(
        {
            "meter_id": m.meter_id.take(pa.array(rows)),
            "role": pa.array(["CUSTOMER"] * len(rows), pa.string()),
            "customer_id": c.ids.take(pa.array(cust)),
            "node_id": null,
            "reading_mode": pa.array(["REGISTER"] * len(rows), pa.string()),
            "multiplier": pa.array(c.mult[cust], pa.int64()),
            "max_kw": no_limit,
            "register_digits": pa.array(m.digits[rows].astype(np.int64)),
            "installed_on": _dates(m.installed[rows]),
            "removed_on": _dates(removed),
        }
    )
    interval_part = pa.table(
        {
            "meter_id": pa.array(interval.meter_id.tolist(), pa.string()),
            "role": pa.array(ROLES).take(pa.array(interval.role)),
            "customer_id": pa.nulls(n_i, pa.string()),
            "node_id": pa.array(interval.node_id.tolist(), pa.string()),
            "reading_mode": pa.array(["INTERVAL"] * n_i, pa.string()),
            "multiplier": pa.array(interval.mult, pa.int64()),
            "max_kw": milli(interval.max_kw_milli),
            "register_digits": pa.array(np.full(n_i, 8, dtype=np.int64)),
            "installed_on": days_text(interval.installed),
            "removed_on": pa.nulls(n_i, pa.date32()),
        }
    )
    return pa.concat_tables([interval_part, customer_part])


def network_table(company: Company, renamed: np.ndarray | None = None) -> pa.Table:
    net = company.network
    dt_name = net.dt_name.copy()
    if renamed is not None:
        dt_name[renamed] = np.array([f"{name} (cải tạo)" for name in dt_name[renamed]], dtype=object)
    codes = np.array(net.region_codes, dtype=object)
    n_b = len(net.boundary_id)
    return pa.table(
        {
            "node_id": pa.array(
                np.concatenate([net.boundary_id, net.feeder_id, net.dt_id]).tolist(), pa.string()
            ),
            "node_type": pa.array(
                ["BOUNDARY"] * n_b + ["FEEDER"] * len(net.feeder_id) + ["DT"] * len(net.dt_id)
            ),
            "parent_id": pa.array(
                [None] * n_b
                + net.boundary_id[net.feeder_boundary].tolist()
                + net.feeder_id[net.dt_feeder].tolist(),
                pa.string(),
            ),
            "region_code": pa.array(
                _boundary_regions(company)
                + codes[net.feeder_region].tolist()
                + codes[net.dt_region].tolist(),
                pa.string(),
            ),
            "name": pa.array(
                np.concatenate([net.boundary_name, net.feeder_name, dt_name]).tolist(), pa.string()
            ),
        }
    )


def _boundary_regions(company: Company) -> list[str]:
    """A substation's region: that of most of its feeders."""
    net = company.network
    out = []
    for b in range(len(net.boundary_id)):
        regions = net.feeder_region[net.feeder_boundary == b]
        out.append(net.region_codes[int(np.bincount(regions).argmax())])
    return out


def tariffs_table(known_on: np.datetime64) -> pa.Table:
    rows = tariff_rows(known_on)
    return pa.table(
        {
            "tariff_code": [r.tariff_code for r in rows],
            "customer_class": [CUSTOMER_CLASSES[r.customer_class] for r in rows],
            "component": [r.component for r in rows],
            "block_from_kwh": pa.array([r.block_from_kwh for r in rows], pa.int64()),
            "block_to_kwh": pa.array([r.block_to_kwh for r in rows], pa.int64()),
            "price_vnd_per_kwh": pa.array([r.price_vnd_per_kwh for r in rows], pa.int64()),
            "valid_from": days_text(np.array([r.valid_from for r in rows]).astype(np.int64)),
            "valid_to": _dates(
                np.array(
                    [
                        NEVER if r.valid_to is None else int(r.valid_to.astype(np.int64)) * DAY_SECONDS
                        for r in rows
                    ]
                )
            ),
        }
    )


DISTRICT_KINDS = ("thị trấn ", "thị xã ", "huyện ", "TP ")


def regions_table(company: Company) -> pa.Table:
    """The optional regions snapshot (contract v2): each district power unit's name, 'Điện lực Đông Hà'."""
    names = []
    for district in company.network.region_districts:
        for kind in DISTRICT_KINDS:
            district = district.removeprefix(kind)
        names.append(f"Điện lực {district}")
    return pa.table(
        {
            "region_code": pa.array(company.network.region_codes, pa.string()),
            "region_name": pa.array(names, pa.string()),
        }
    )


def write_reference(company: Company, interval: IntervalMeters, landing: Landing) -> None:
    """Every customers, meters, network and tariffs snapshot of the range (plans come at the end)."""
    months = company.axis.months
    for mi, stamp, as_of, dt_month in snapshots(company):
        close = str(months[mi])
        table = customers_table(company, as_of, company.dt_in_month(dt_month))
        landing.put(f"reference/customers_{stamp}.csv", close, table, quoting="needed")
        table = meters_table(company, interval, as_of)
        landing.put(f"reference/meters_{stamp}.csv", close, table, quoting="needed")

    first = str(months[1]).replace("-", "") + "01"
    table = network_table(company)
    # exported from a spreadsheet: a UTF-8 byte order mark, which the contract allows
    landing.put(f"reference/network_{first}.csv", str(months[1]), table, quoting="needed", prefix=_BOM)
    landing.put(f"reference/regions_{first}.csv", str(months[1]), regions_table(company), quoting="needed")
    januaries = [mi for mi in range(2, len(months)) if str(months[mi]).endswith("-01")]
    if januaries:
        mi = januaries[0]
        rng = stream(company.seed, 7)
        renamed = rng.choice(
            len(company.network.dt_id), max(1, len(company.network.dt_id) // 50), replace=False
        )
        table = network_table(company, renamed)
        landing.put(
            f"reference/network_{str(months[mi]).replace('-', '')}01.csv",
            str(months[mi]),
            table,
            quoting="needed",
        )

    start_day = months[1].astype("datetime64[D]")
    end_day = (months[-1] + 1).astype("datetime64[D]")
    table = tariffs_table(start_day)
    landing.put(f"reference/tariffs_{first}.csv", str(months[1]), table, quoting="needed")
    for start in VERSION_STARTS:
        if start_day < start < end_day:
            table = tariffs_table(start)
            close = str(start.astype("datetime64[M]"))
            landing.put(
                f"reference/tariffs_{str(start).replace('-', '')}.csv", close, table, quoting="needed"
            )
