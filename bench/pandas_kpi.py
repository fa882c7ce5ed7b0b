"""mart_kpi_monthly computed the way a pandas user would: read the lake's Parquet, groupby, merge.

The benchmark times this against meterflow's aggregates + publish and checks that both give the same
figures (CONTRACT.md §6). Decimals are read as float64, as a pandas user would; the comparison allows
a relative difference of 1e-6 for that reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl.contract import CASH_CHANNELS
from etl.lake import partition_files, raw_files, validated_dir
from etl.models import raw_columns
from etl.settings import Settings

KPI_KEY = ["period", "region_code"]
KPI_COLUMNS = [
    "kwh_sold",
    "revenue_vnd",
    "avg_price_vnd_per_kwh",
    "kwh_sold_ytd",
    "kwh_sold_ytd_yoy_pct",
    "plan_kwh_sold",
    "plan_attainment_pct",
    "avg_price_ytd_vnd_per_kwh",
    "avg_price_ytd_vs_plan_vnd",
    "avg_price_ytd_yoy_vnd",
    "kwh_received",
    "loss_rate_pct",
    "loss_rate_ytd_pct",
    "loss_rate_ytd_vs_plan_pts",
    "loss_rate_ytd_yoy_pts",
    "cashless_customer_pct",
    "cashless_amount_pct",
]
ORDER = ["_ingest_seq", "_line_no"]
RAW_READS: dict[str, list[str]] = {
    "bill_lines": [
        "export_id",
        "export_version",
        "billing_period",
        "bill_id",
        "line_no",
        "customer_id",
        "kwh",
        "amount_vnd",
        *ORDER,
    ],
    "payments": ["payment_id", "customer_id", "paid_at", "amount_vnd", "channel", *ORDER],
    "customers": ["customer_id", "region_code", "_snapshot_date", *ORDER],
    "meters": ["meter_id", "role", "node_id", "_snapshot_date", *ORDER],
    "network": ["node_id", "region_code", "_snapshot_date", *ORDER],
    "plans": ["year", "region_code", "kpi", "target", "_snapshot_date", *ORDER],
}
MONTHLY_COLUMNS = {
    "period": "VARCHAR",
    "meter_id": "VARCHAR",
    "channel": "VARCHAR",
    "energy_kwh": "DECIMAL(38,12)",
}


# Repeated text of the two large datasets is read as categoricals, the usual pandas way to hold tens of
# millions of rows: as plain strings the full company's bill lines alone would take about 5 GB.
CATEGORICAL = {
    "bill_lines": ["export_id", "billing_period", "bill_id", "customer_id"],
    "payments": ["customer_id", "channel"],
}


def read_parquet(
    files: Sequence[Path], columns: dict[str, str], categories: Sequence[str] = ()
) -> pd.DataFrame:
    """Read Parquet files into one DataFrame with decimals as float64; no files give an empty typed frame."""
    if not files:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(t)) for name, t in columns.items()})
    table = decimals_to_float(
        pq.read_table([str(f) for f in files], columns=list(columns), partitioning=None)
    )
    # self_destruct frees the Arrow buffers while converting, so the data is not held twice
    return table.to_pandas(
        categories=list(categories), date_as_object=False, self_destruct=True, split_blocks=True
    )


def _dtype(lake_type: str) -> str:
    """The pandas dtype a column of this lake type reads as (decimals as float64)."""
    if lake_type.startswith("DECIMAL"):
        return "float64"
    return {"BIGINT": "int64", "DATE": "datetime64[s]", "TIMESTAMP": "datetime64[us]"}.get(lake_type, "str")


def decimals_to_float(table: pa.Table) -> pa.Table:
    """The same table with every DECIMAL column cast to float64."""
    fields = [pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def load_lake(settings: Settings) -> dict[str, pd.DataFrame]:
    """The raw datasets and validated meter_monthly the KPIs need, as DataFrames."""
    frames = {
        name: read_parquet(
            raw_files(settings, name), {c: raw_columns(name)[c] for c in cols}, CATEGORICAL.get(name, ())
        )
        for name, cols in RAW_READS.items()
    }
    monthly = partition_files(validated_dir(settings, "meter_monthly"))
    frames["meter_monthly"] = read_parquet(monthly, MONTHLY_COLUMNS)
    return frames


def latest(
    frame: pd.DataFrame,
    key: list[str],
    order: list[str] = ORDER,
    where: pd.Series | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """One row per key (among rows `where` holds): the most recently ingested file wins, then the later line.

    Only the key and order columns are sorted, so a large frame is not copied whole before it is filtered.
    """
    picked = frame.loc[where, [*order, *key]] if where is not None else frame[[*order, *key]]
    picked = picked.sort_values(order, kind="stable")
    keep = picked.index[~picked.duplicated(key, keep="last").to_numpy()]
    return frame.loc[keep, columns] if columns is not None else frame.loc[keep]


def current(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Reference rows of the newest snapshot that lists each key."""
    return latest(frame, key, order=["_snapshot_date", *ORDER])


def divide(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den, NaN where den is 0 or missing."""
    return num / den.where(den != 0)


def region_of(customer_id: pd.Series, regions: pd.Series) -> pd.Series:
    """Each customer's region in the newest snapshot listing it; 'UNKNOWN' when none does."""
    return customer_id.map(regions).fillna("UNKNOWN")


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The key columns as plain text (categoricals of different frames do not merge cleanly)."""
    return frame.astype({c: "str" for c in KPI_KEY})


def sales(bill_lines: pd.DataFrame, regions: pd.Series) -> pd.DataFrame:
    """kWh sold and revenue per billing period and region (latest export versions, adjustments signed)."""
    top = bill_lines.groupby("export_id", observed=True)["export_version"].transform("max")
    lines = latest(
        bill_lines,
        ["export_id", "export_version", "bill_id", "line_no"],
        where=bill_lines["export_version"] == top,
        columns=["billing_period", "customer_id", "kwh", "amount_vnd"],
    )
    lines = lines.assign(region_code=region_of(lines["customer_id"], regions))
    lines = lines.rename(columns={"billing_period": "period", "amount_vnd": "revenue_vnd", "kwh": "kwh_sold"})
    figures = ["kwh_sold", "revenue_vnd"]
    by_region = lines.groupby(KPI_KEY, as_index=False, observed=True)[figures].sum()
    company = lines.groupby("period", as_index=False, observed=True)[figures].sum()
    return _as_text(pd.concat([_as_text(by_region), _as_text(company.assign(region_code="ALL"))]))


def cashless(payments: pd.DataFrame, regions: pd.Series) -> pd.DataFrame:
    """Cashless share of paying customers and of money, per local month of paid_at and region."""
    pay = latest(payments, ["payment_id"], columns=["customer_id", "paid_at", "amount_vnd", "channel"])
    paid_at = pd.to_datetime(pay["paid_at"])
    cashless = ~pay["channel"].isin(CASH_CHANNELS)
    pay = pay.assign(
        month=paid_at.dt.year * 100 + paid_at.dt.month,
        cashless=cashless,
        cashless_vnd=pay["amount_vnd"].where(cashless, 0.0),
    )
    per_customer = pay.groupby(["month", "customer_id"], as_index=False, observed=True).agg(
        only_cashless=("cashless", "min"),
        paid_vnd=("amount_vnd", "sum"),
        cashless_vnd=("cashless_vnd", "sum"),
    )
    labels = {ym: f"{ym // 100:04d}-{ym % 100:02d}" for ym in per_customer["month"].unique()}
    per_customer = per_customer.assign(
        period=per_customer["month"].map(labels), region_code=region_of(per_customer["customer_id"], regions)
    )
    both = pd.concat([_as_text(per_customer), _as_text(per_customer.assign(region_code="ALL"))])
    out = both.groupby(KPI_KEY, as_index=False).agg(
        paying=("customer_id", "size"),
        cashless_customers=("only_cashless", "sum"),
        paid_vnd=("paid_vnd", "sum"),
        cashless_vnd=("cashless_vnd", "sum"),
    )
    out["cashless_customer_pct"] = divide(out["cashless_customers"] * 100.0, out["paying"])
    out["cashless_amount_pct"] = divide(out["cashless_vnd"] * 100.0, out["paid_vnd"])
    return out[[*KPI_KEY, "cashless_customer_pct", "cashless_amount_pct"]]


def received(monthly: pd.DataFrame, meters: pd.DataFrame, network: pd.DataFrame) -> pd.DataFrame:
    """Energy into the grid per month: BOUNDARY meters for the company, FEEDER meters per region; import
    less export, reactive channels left out."""
    active = monthly[monthly["channel"].isin(["ACTIVE_IMPORT", "ACTIVE_EXPORT"])].copy()
    active["energy_kwh"] = np.where(
        active["channel"] == "ACTIVE_EXPORT", -active["energy_kwh"], active["energy_kwh"]
    )
    metered = active.merge(meters, on="meter_id", how="inner")
    metered = metered[metered["role"].isin(["BOUNDARY", "FEEDER"])]
    metered = metered.merge(network, on="node_id", how="left")
    metered["region_code"] = np.where(
        metered["role"] == "BOUNDARY", "ALL", metered["region_code"].fillna("UNKNOWN")
    )
    out = metered.groupby(KPI_KEY, as_index=False)["energy_kwh"].sum(min_count=1)
    return out.rename(columns={"energy_kwh": "kwh_received"})


def running_sum(frame: pd.DataFrame, column: str) -> pd.Series:
    """Sum from January to the row's period within its region and year; NaN until a value is seen."""
    groups = [frame["region_code"], frame["year"]]
    total = frame[column].fillna(0).groupby(groups).cumsum()
    seen = frame[column].notna().astype(int).groupby(groups).cumsum()
    return total.where(seen > 0)


def year_to_date(kpi: pd.DataFrame) -> pd.DataFrame:
    """YTD sums and YTD ratios per region and year."""
    kpi = kpi.assign(year=kpi["period"].str[:4].astype(int), month=kpi["period"].str[5:7].astype(int))
    kpi = kpi.sort_values(["region_code", "period"]).reset_index(drop=True)
    groups = [kpi["region_code"], kpi["year"]]
    kpi["kwh_sold_ytd"] = kpi["kwh_sold"].groupby(groups).cumsum()
    kpi["revenue_vnd_ytd"] = kpi["revenue_vnd"].groupby(groups).cumsum()
    kpi["kwh_received_ytd"] = running_sum(kpi, "kwh_received")
    kpi["avg_price_ytd_vnd_per_kwh"] = divide(kpi["revenue_vnd_ytd"], kpi["kwh_sold_ytd"])
    kpi["loss_rate_ytd_pct"] = divide(
        (kpi["kwh_received_ytd"] - kpi["kwh_sold_ytd"]) * 100, kpi["kwh_received_ytd"]
    )
    return kpi


def with_last_year(kpi: pd.DataFrame) -> pd.DataFrame:
    """Each row beside the same region's sums over the same months (January to its month) a year earlier.

    Year on year is NULL when those months hold no kWh sold (for loss rates also no kWh received).
    """
    monthly = kpi[["region_code", "year", "month", "kwh_sold", "revenue_vnd", "kwh_received"]]
    months = pd.DataFrame({"month": range(1, 13)})
    years = monthly[["region_code", "year"]].drop_duplicates()
    grid = years.merge(months, how="cross").merge(monthly, on=["region_code", "year", "month"], how="left")
    grid = grid.sort_values(["region_code", "year", "month"]).fillna(0.0)
    groups = [grid["region_code"], grid["year"]]
    last = pd.DataFrame(
        {
            "region_code": grid["region_code"],
            "year": grid["year"] + 1,
            "month": grid["month"],
            "last_kwh_sold_ytd": grid["kwh_sold"].groupby(groups).cumsum(),
            "last_revenue_ytd": grid["revenue_vnd"].groupby(groups).cumsum(),
            "last_kwh_received_ytd": grid["kwh_received"].groupby(groups).cumsum(),
        }
    )
    kpi = kpi.merge(last, on=["region_code", "year", "month"], how="left")
    kpi["sales_history"] = kpi["last_kwh_sold_ytd"].fillna(0) != 0
    kpi["received_history"] = kpi["last_kwh_received_ytd"].fillna(0) != 0
    kpi["last_avg_price_ytd_vnd_per_kwh"] = divide(kpi["last_revenue_ytd"], kpi["last_kwh_sold_ytd"])
    kpi["last_loss_rate_ytd_pct"] = divide(
        (kpi["last_kwh_received_ytd"] - kpi["last_kwh_sold_ytd"]) * 100, kpi["last_kwh_received_ytd"]
    )
    return kpi


def plans_wide(plans: pd.DataFrame) -> pd.DataFrame:
    """The current targets per year and region, one column per KPI."""
    targets = current(plans, ["year", "region_code", "kpi"])
    wide = targets.pivot_table(index=["year", "region_code"], columns="kpi", values="target", aggfunc="max")
    wide = wide.reindex(columns=["KWH_SOLD", "AVG_PRICE", "LOSS_RATE"])
    wide.columns = ["plan_kwh_sold", "plan_avg_price", "plan_loss_rate"]
    return wide.reset_index()


def row_keys(*frames: pd.DataFrame) -> pd.DataFrame:
    """Every (period, region) with any figure, and a company row for every period."""
    keys = pd.concat([f[KPI_KEY] for f in frames], ignore_index=True)
    company = pd.DataFrame({"period": keys["period"].unique(), "region_code": "ALL"})
    return pd.concat([keys, company], ignore_index=True).drop_duplicates(ignore_index=True)


def kpi_monthly(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """mart_kpi_monthly's figures (CONTRACT.md §6) from the lake's frames, one row per period and region.

    Billed and paid figures are 0 where there are none; received energy stays NaN where no meter reported.
    """
    customers = current(frames["customers"], ["customer_id"])
    regions = pd.Series(customers["region_code"].to_numpy(), index=customers["customer_id"].astype("str"))
    meters = current(frames["meters"], ["meter_id"])[["meter_id", "role", "node_id"]]
    network = current(frames["network"], ["node_id"])[["node_id", "region_code"]]
    sold = sales(frames["bill_lines"], regions).assign(billed=True)
    energy = received(frames["meter_monthly"], meters, network)
    paid = cashless(frames["payments"], regions)
    kpi = row_keys(sold, energy, paid)
    kpi = kpi.merge(sold, on=KPI_KEY, how="left").merge(energy, on=KPI_KEY, how="left")
    kpi = kpi.merge(paid, on=KPI_KEY, how="left")
    kpi["billed"] = kpi["billed"].fillna(False).astype(bool)
    kpi[["kwh_sold", "revenue_vnd"]] = kpi[["kwh_sold", "revenue_vnd"]].fillna(0.0)
    kpi = with_last_year(year_to_date(kpi))
    kpi = kpi.merge(plans_wide(frames["plans"]), on=["year", "region_code"], how="left")

    kpi["avg_price_vnd_per_kwh"] = divide(kpi["revenue_vnd"], kpi["kwh_sold"])
    kpi["kwh_sold_ytd_yoy_pct"] = ((kpi["kwh_sold_ytd"] / kpi["last_kwh_sold_ytd"] - 1) * 100).where(
        kpi["sales_history"]
    )
    kpi["plan_attainment_pct"] = divide(kpi["kwh_sold_ytd"] * 100, kpi["plan_kwh_sold"])
    kpi["avg_price_ytd_vs_plan_vnd"] = kpi["avg_price_ytd_vnd_per_kwh"] - kpi["plan_avg_price"]
    kpi["avg_price_ytd_yoy_vnd"] = (
        kpi["avg_price_ytd_vnd_per_kwh"] - kpi["last_avg_price_ytd_vnd_per_kwh"]
    ).where(kpi["sales_history"])
    kpi["loss_rate_pct"] = divide((kpi["kwh_received"] - kpi["kwh_sold"]) * 100, kpi["kwh_received"])
    kpi["loss_rate_ytd_vs_plan_pts"] = kpi["loss_rate_ytd_pct"] - kpi["plan_loss_rate"]
    kpi["loss_rate_ytd_yoy_pts"] = (kpi["loss_rate_ytd_pct"] - kpi["last_loss_rate_ytd_pct"]).where(
        kpi["sales_history"] & kpi["received_history"]
    )
    return kpi[[*KPI_KEY, *KPI_COLUMNS]].sort_values(KPI_KEY).reset_index(drop=True)


def compute(settings: Settings) -> pd.DataFrame:
    """Read the lake and compute the KPIs: the whole pandas path that the benchmark times."""
    return kpi_monthly(load_lake(settings))


def read_mart(marts_path: Path) -> pd.DataFrame:
    """mart_kpi_monthly of a published marts file, decimals as float64."""
    import duckdb

    con = duckdb.connect(str(marts_path), read_only=True)
    try:
        table = con.sql("select * from mart_kpi_monthly").to_arrow_table()
    finally:
        con.close()
    return decimals_to_float(table).to_pandas()


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    a_missing = a is None or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or (isinstance(b, float) and math.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-9)


def compare(ours: pd.DataFrame, marts: pd.DataFrame, rel_tol: float = 1e-6, show: int = 20) -> dict[str, Any]:
    """Where two KPI tables differ: keys on one side only, and values beyond `rel_tol` (NULL = NULL)."""
    columns = [c for c in KPI_COLUMNS if c in marts.columns]
    left = ours.set_index(KPI_KEY)
    right = marts.set_index(KPI_KEY)
    only_ours = sorted(set(left.index) - set(right.index))
    only_marts = sorted(set(right.index) - set(left.index))
    common = sorted(set(left.index) & set(right.index))
    mismatches = []
    for column in columns:
        a_values = left.loc[common, column].astype("float64").to_numpy() if common else []
        b_values = right.loc[common, column].astype("float64").to_numpy() if common else []
        for key, a, b in zip(common, a_values, b_values, strict=True):
            if not _same(a, b, rel_tol):
                mismatches.append(
                    {"period": key[0], "region_code": key[1], "column": column, "pandas": a, "marts": b}
                )
    return {
        "rows_pandas": len(left),
        "rows_marts": len(right),
        "columns_compared": columns,
        "columns_missing_in_marts": [c for c in KPI_COLUMNS if c not in marts.columns],
        "only_pandas": [list(k) for k in only_ours[:show]],
        "only_marts": [list(k) for k in only_marts[:show]],
        "mismatch_count": len(mismatches),
        "mismatches": mismatches[:show],
        "equal": not only_ours and not only_marts and not mismatches and bool(columns),
    }
