"""The synthetic company: determinism, contract-exact files, DOMAIN.md tariffs, and a truth that holds.

The truth is re-derived here from the landing files alone (bill lines summed with export versions and
quarantined rows applied; boundary and feeder energy through the contract's VEE rules), so a
generator whose truth drifted from its files fails.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from etl.contract import CHANNELS, COMPONENTS, DATASETS, REQUEST_CHANNELS
from etl.generate import GenerateSummary, generate
from etl.synth.billing import household_cashless_share
from etl.synth.tariff import CODE_INDEX, bill_lines

# ---------------------------------------------------------------- helpers


def text_of(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8-sig")


def rows_of(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text_of(path))))
    return rows[0], rows[1:]


def summary_of(home: Path) -> dict:
    return json.loads((home / "truth" / "summary.json").read_text())


def faults_of(home: Path) -> pd.DataFrame:
    return pq.read_table(home / "truth" / "faults.parquet").to_pandas()


def truth(home: Path, name: str) -> pd.DataFrame:
    return pq.read_table(home / "truth" / f"{name}.parquet").to_pandas()


def quarantined_lines(home: Path) -> set[tuple[str, int]]:
    """(file, line) of rows the generator says ingestion must quarantine."""
    f = faults_of(home)
    f = f[f["expected"].isin(["quarantine", "quarantine_then_interpolate"])]
    return {(file, int(line)) for file, line in zip(f["file"], f["line"], strict=True)}


def accepted_rows(home: Path, dataset: str) -> list[tuple[int, str, int, dict[str, str]]]:
    """Rows ingestion must accept, as (close order, file, line, row), in ingestion order."""
    summary = summary_of(home)
    closes = {c: i for i, c in enumerate(sorted({f["close"] for f in summary["files"].values()}))}
    bad = quarantined_lines(home)
    out = []
    files = [
        (closes[i["close"]], p)
        for p, i in summary["files"].items()
        if i["dataset"] == dataset and i["status"] == "INGESTED"
    ]
    for order, path in sorted(files):
        header, data = rows_of(home / "landing" / path)
        for i, row in enumerate(data):
            if (path, i + 2) not in bad:
                out.append((order, path, i + 2, dict(zip(header, row, strict=True))))
    return out


def local_time(text: str) -> datetime:
    """CONTRACT.md: with an offset the instant, without one local time (UTC+07:00)."""
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if ts.tzinfo is not None:
        ts = (ts - ts.utcoffset()).replace(tzinfo=None) + timedelta(hours=7)
    return ts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("tiny")
    calls: list[tuple[str, int, int]] = []
    summary = generate(
        home,
        customers=300,
        start="2024-01",
        end="2024-03",
        seed=7,
        fault_rate=0.01,
        progress=lambda s, d, t: calls.append((s, d, t)),
    )
    assert isinstance(summary, GenerateSummary)
    assert ("months", 3, 3) in calls and ("truth", 1, 1) in calls
    return home


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("medium")
    generate(home, customers=3000, start="2024-01", end="2024-12", seed=11, fault_rate=0.01)
    return home


# ---------------------------------------------------------------- determinism and arguments


def _contents(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    args = {"customers": 120, "start": "2024-01", "end": "2024-02", "fault_rate": 0.01}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, seed=seed, **args)
    a, b, c = (_contents(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    changed = [k for k in a if a[k] != c[k]]
    assert "landing/reference/customers_20240101.csv" in changed
    assert "landing/billing/bill_lines_20240131_CIS-2024-01-R1_v1.csv.gz" in changed


@pytest.mark.parametrize(
    "kwargs",
    [{"customers": 5}, {"start": "2024-05", "end": "2024-04"}, {"fault_rate": 0.5}, {"start": "2024-1"}],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, **{"customers": 100, **kwargs})
    assert not (tmp_path / "landing").exists()


# ---------------------------------------------------------------- the files


def test_every_file_header_matches_the_contract(tiny: Path) -> None:
    summary = summary_of(tiny)
    assert len(summary["files"]) == 38  # 31 + one service_requests and one inspections file a month + regions
    for path, info in summary["files"].items():
        if info["status"] != "INGESTED":
            continue
        header, _ = rows_of(tiny / "landing" / path)
        extra = {"source"} if info["dataset"] == "register_reads" else set()
        assert len(header) == len(set(header)), path
        # every required column, and contract columns only (the optional channel is left out)
        spec = DATASETS[info["dataset"]]
        assert set(spec.required_columns) <= set(header) <= set(spec.column_names) | extra, path


def test_files_parse_as_csv_with_the_recorded_rows_and_broken_lines(tiny: Path) -> None:
    summary = summary_of(tiny)
    faults = faults_of(tiny)
    short = faults[faults["kind"] == "wrong_field_count"]
    assert len(short) == 2  # one interval row, one bill line
    for path, info in summary["files"].items():
        if info["status"] != "INGESTED":
            continue
        header, data = rows_of(tiny / "landing" / path)
        assert len(data) == info["rows"], path
        wrong_width = {i + 2 for i, row in enumerate(data) if len(row) != len(header)}
        assert wrong_width == set(short.loc[short["file"] == path, "line"].astype(int)), path


def test_rejected_files_are_broken_the_way_the_truth_says(tiny: Path) -> None:
    rejected = {p: i for p, i in summary_of(tiny)["files"].items() if i["status"] == "REJECTED"}
    assert sorted(i["reason"] for i in rejected.values()) == [
        "missing required column channel",
        "not valid UTF-8",
        "truncated gzip",
    ]
    for path, info in rejected.items():
        data = (tiny / "landing" / path).read_bytes()
        if info["reason"] == "truncated gzip":
            with pytest.raises((EOFError, zlib.error, gzip.BadGzipFile)):
                gzip.decompress(data)
        elif info["reason"] == "not valid UTF-8":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        else:
            header = data.decode().splitlines()[0].split(",")
            assert "channel" not in header and "payment_id" in header


def test_drops_list_every_landing_file_once_and_resends_after_originals(tiny: Path) -> None:
    drops = json.loads((tiny / "truth" / "drops.json").read_text())
    assert list(drops) == ["2024-01", "2024-02", "2024-03"]
    listed = [p for files in drops.values() for p in files]
    on_disk = sorted(
        str(p.relative_to(tiny / "landing")) for p in (tiny / "landing").rglob("*") if p.is_file()
    )
    assert sorted(listed) == on_disk
    assert len(listed) == len(set(listed))
    close = {p: c for c, files in drops.items() for p in files}
    assert close["reference/customers_20240101.csv"] == "2024-01"
    assert drops["2024-01"][0].startswith("reference/")
    assert close["readings/interval_reads_20240101_hes1_r2.csv"] == "2024-02"
    assert close["billing/bill_lines_20240229_CIS-2024-02-R1_v1.csv.gz"] == "2024-02"
    assert close["billing/bill_lines_20240315_CIS-2024-02-R1_v2.csv.gz"] == "2024-03"


def test_utc_files_carry_the_same_instants_and_repeat_the_previous_month_tail(tiny: Path) -> None:
    bad = quarantined_lines(tiny)

    def good(file: str) -> list[list[str]]:
        _, data = rows_of(tiny / "landing" / "readings" / file)
        return [r for i, r in enumerate(data) if (f"readings/{file}", i + 2) not in bad]

    jan, feb = good("interval_reads_20240101_hes1.csv"), good("interval_reads_20240201_hes1.csv")
    assert all(r[1].endswith("Z") for r in feb) and not any(r[1].endswith("Z") for r in jan)
    feb_local = [local_time(r[1]) for r in feb]
    assert min(feb_local) == datetime(2024, 1, 31, 22, 0)
    assert max(feb_local) == datetime(2024, 2, 29, 23, 30)
    jan_values = {(r[0], local_time(r[1])): r[3] for r in jan}
    repeats = [r for r in feb if local_time(r[1]) < datetime(2024, 2, 1)]
    assert len(repeats) == 4 * 4  # two hours of each of the 2 boundary and 2 feeder meters
    assert all(jan_values[(r[0], local_time(r[1]))] == r[3] for r in repeats)


# ---------------------------------------------------------------- tariffs and money

RESIDENTIAL = {
    "2024-10-11": (1893, 1956, 2271, 2860, 3197, 3302),
    "2025-05-10": (1984, 2050, 2380, 2998, 3350, 3460),
}
TOU_2025 = {  # OFFPEAK, NORMAL, PEAK (DOMAIN.md)
    "SX-110": (1146, 1811, 3266),
    "SX-22": (1190, 1833, 3398),
    "SX-6": (1234, 1899, 3508),
    "SX-LV": (1300, 1987, 3640),
    "KD-22": (1609, 2887, 5025),
    "KD-6": (1829, 3108, 5202),
    "KD-LV": (1918, 3152, 5422),
}
FLAT_2025 = {"BV-6": 1940, "BV-LV": 2072, "HC-6": 2138, "HC-LV": 2226, "NN-LV": 1987, "KH-LV": 2226}


def _div(price: int, step: str = "1.048") -> int:
    return int((Decimal(price) / Decimal(step)).quantize(Decimal(1), ROUND_HALF_UP))


def domain_price(code: str, component: str, version: str) -> int:
    """DOMAIN.md's table; 2024-10-11 TOU and flat prices are 2025's / 1.048, 2023-11-09 is 2024's / 1.048."""
    if version == "2023-11-09":
        return _div(domain_price(code, component, "2024-10-11"))
    if code == "SH":
        return RESIDENTIAL[version][int(component[-1]) - 1]
    latest = (
        FLAT_2025[code]
        if component == "FLAT"
        else TOU_2025[code][("OFFPEAK", "NORMAL", "PEAK").index(component)]
    )
    return latest if version == "2025-05-10" else _div(latest)


def _versions(start: str, end: str) -> set[str]:
    starts = ["2023-11-09", "2024-10-11", "2025-05-10"]
    first, last = datetime.fromisoformat(start), datetime.fromisoformat(end) - timedelta(days=1)
    return {
        v
        for i, v in enumerate(starts)
        if datetime.fromisoformat(v) <= last
        and (i + 1 == len(starts) or datetime.fromisoformat(starts[i + 1]) > first)
    }


def test_bill_line_prices_match_the_domain_table_for_their_dates(tmp_path: Path) -> None:
    generate(tmp_path, customers=150, start="2024-10", end="2025-06", seed=5, fault_rate=0.0)
    used = defaultdict(set)
    lines = accepted_rows(tmp_path, "bill_lines")
    assert len(lines) > 3000
    for _, path, line, r in lines:
        allowed = {
            domain_price(r["tariff_code"], r["component"], v)
            for v in _versions(r["period_start"], r["period_end"])
        }
        assert int(r["unit_price_vnd"]) in allowed, (path, line, r)
        used[r["tariff_code"]].add(int(r["unit_price_vnd"]))
    assert {1893, 1984, 3460, 1806} <= used["SH"]  # both DOMAIN tables, and 2023's before 2024-10-11
    assert len(used) >= 4
    _, tariffs = rows_of(tmp_path / "landing" / "reference/tariffs_20250510.csv")
    newest = [r for r in tariffs if r[6] in ("2023-11-09", "2024-10-11", "2025-05-10")]
    assert len(newest) == 3 * (6 + 7 * 3 + 6)
    for code, _, component, _, _, price, valid_from, valid_to in newest:
        assert int(price) == domain_price(code, component, valid_from), (code, component, valid_from)
        assert (
            valid_to == {"2023-11-09": "2024-10-10", "2024-10-11": "2025-05-09", "2025-05-10": ""}[valid_from]
        )


def test_amounts_are_kwh_times_price_and_vat_is_eight_percent(tiny: Path) -> None:
    lines = accepted_rows(tiny, "bill_lines")
    assert len(lines) > 2000
    for _, path, line, r in lines:
        amount = Decimal(r["amount_vnd"])
        exact = Decimal(r["kwh"]) * Decimal(r["unit_price_vnd"])
        assert abs(amount - exact) <= Decimal("0.5"), (path, line)
        assert abs(Decimal(r["vat_vnd"]) - amount * Decimal("0.08")) <= Decimal("0.5"), (path, line)
        assert r["component"] in COMPONENTS
        assert Decimal(r["kwh"]) >= 0 or r["bill_type"] == "ADJUSTMENT"
    adjustments = [r for *_, r in lines if r["bill_type"] == "ADJUSTMENT"]
    assert adjustments and any(Decimal(r["kwh"]) < 0 for r in adjustments)


def test_blocks_scale_by_days_and_kwh_split_at_a_price_change() -> None:
    # 6 May -> 6 June 2025: 4 days before the 10 May price change, 27 after, May has 31 days.
    lines = bill_lines(
        np.array([CODE_INDEX["SH"], CODE_INDEX["SX-6"]]),
        np.array(["2025-05-06", "2025-05-01"], dtype="datetime64[D]"),
        np.array(["2025-06-06", "2025-05-11"], dtype="datetime64[D]"),
        np.array([[31_000, 0, 0, 0], [0, 10_000, 2_000, 3_000]]),
    )
    got = list(
        zip(
            lines.bill.tolist(),
            [COMPONENTS[c] for c in lines.component],
            lines.centi_kwh.tolist(),
            lines.price.tolist(),
            strict=True,
        )
    )
    assert got == [
        # 310 kWh: 40 (= 310 x 4/31) at 2024 prices on blocks of 6, 6, 13, 13, 13 kWh; 270 at 2025 prices
        (0, "BLOCK_1", 600, 1893),
        (0, "BLOCK_2", 600, 1956),
        (0, "BLOCK_3", 1300, 2271),
        (0, "BLOCK_4", 1300, 2860),
        (0, "BLOCK_5", 200, 3197),
        (0, "BLOCK_1", 4400, 1984),
        (0, "BLOCK_2", 4400, 2050),
        (0, "BLOCK_3", 8700, 2380),
        (0, "BLOCK_4", 8700, 2998),
        (0, "BLOCK_5", 800, 3350),
        # 100 / 20 / 30 kWh over 10 days, 9 of them before 10 May
        (1, "NORMAL", 9000, 1812),
        (1, "PEAK", 1800, 3347),
        (1, "OFFPEAK", 2700, 1177),
        (1, "NORMAL", 1000, 1899),
        (1, "PEAK", 200, 3508),
        (1, "OFFPEAK", 300, 1234),
    ]
    assert lines.amount.tolist()[:2] == [11358, 11736]
    assert lines.vat.tolist()[:2] == [909, 939]


# ---------------------------------------------------------------- the truth, re-derived from the files


def test_kwh_sold_and_revenue_truth_equal_the_final_export_versions(tiny: Path) -> None:
    lines = accepted_rows(tiny, "bill_lines")
    latest: dict[str, int] = {}
    for *_, r in lines:
        latest[r["export_id"]] = max(latest.get(r["export_id"], 0), int(r["export_version"]))
    kwh: dict[str, Decimal] = defaultdict(Decimal)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for *_, r in lines:
        if int(r["export_version"]) == latest[r["export_id"]]:
            kwh[r["billing_period"]] += Decimal(r["kwh"])
            revenue[r["billing_period"]] += Decimal(r["amount_vnd"])
    kpis = truth(tiny, "kpis_company").set_index("period")
    assert list(kpis.index) == ["2024-01", "2024-02", "2024-03"]
    for period in kpis.index:
        assert kpis.loc[period, "kwh_sold"] == kwh[period]
        assert kpis.loc[period, "revenue_vnd"] == revenue[period]
    regions = truth(tiny, "kpis_region").groupby("period")["kwh_sold"].sum()
    assert all(regions[p] == kwh[p] for p in kpis.index)
    assert truth(tiny, "sales_monthly").groupby("period")["kwh_sold"].sum().to_dict() == dict(kwh)


def _validated_energy(home: Path) -> dict[tuple[str, str], Decimal]:
    """CONTRACT.md §4 on the boundary and feeder meters, from the landing files (per period and meter)."""
    _, meter_rows = rows_of(home / "landing" / "reference/meters_20240229.csv")
    meters = {r[0]: r for r in meter_rows if r[1] in ("BOUNDARY", "FEEDER")}
    latest: dict[tuple[str, datetime], tuple[Decimal, str]] = {}
    for *_, r in accepted_rows(home, "interval_reads"):
        meter = meters.get(r["meter_id"])
        if meter is None:
            continue
        value = Decimal(r["kwh"])
        if value < 0:
            continue  # ingestion quarantines it
        latest[(r["meter_id"], local_time(r["interval_start"]))] = (value, r["quality"] or "A")
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    step, week = timedelta(minutes=30), timedelta(days=7)
    for meter_id, meter in meters.items():
        limit = Decimal(meter[6]) / 2
        got = {t: v for (m, t), v in latest.items() if m == meter_id and v[0] <= limit}
        grid = [min(got) + step * i for i in range(int((max(got) - min(got)) / step) + 1)]
        value: dict[datetime, Decimal] = {t: got[t][0] for t in grid if t in got}
        actual = {t for t in grid if t in got and got[t][1] == "A"}
        missing = [t for t in grid if t not in got]
        runs: list[list[datetime]] = []
        for t in missing:
            if runs and runs[-1][-1] + step == t:
                runs[-1].append(t)
            else:
                runs.append([t])
        for run in runs:
            before, after = run[0] - step, run[-1] + step
            if len(run) <= 4 and before in actual and after in actual:
                a, b, n = got[before][0], got[after][0], len(run)
                for i, t in enumerate(run, 1):
                    value[t] = (a + (b - a) * i / (n + 1)).quantize(Decimal("0.000001"), ROUND_HALF_UP)
            else:
                for t in run:
                    if t - week in actual:
                        value[t] = got[t - week][0]
        for t, v in value.items():
            out[(f"{t:%Y-%m}", meter_id)] += v * Decimal(meter[5])
    return out


def test_meter_energy_truth_equals_the_contract_vee_rules_on_the_files(tiny: Path) -> None:
    expected = _validated_energy(tiny)
    mm = truth(tiny, "meter_monthly")
    mm = mm[mm["role"].isin(["BOUNDARY", "FEEDER"])]
    assert len(mm) == 3 * 4  # 3 months x (2 boundary + 2 feeder meters)
    for row in mm.itertuples():
        assert row.energy_kwh == expected[(row.period, row.meter_id)], (row.period, row.meter_id)
    lost = mm[~mm["recoverable"]]
    assert len(lost) >= 1 and (lost["energy_kwh"] < lost["true_energy_kwh"]).all()
    kept = mm[mm["recoverable"]]
    assert (kept["energy_kwh"] == kept["true_energy_kwh"]).all()
    kpis = truth(tiny, "kpis_company").set_index("period")
    boundary = mm[mm["role"] == "BOUNDARY"].groupby("period")["energy_kwh"].sum()
    assert all(kpis.loc[p, "kwh_received"] == boundary[p] for p in kpis.index)
    assert not kpis.loc["2024-01", "kwh_received_exact"]  # the planted unrecoverable gap is on a boundary


def test_register_indexes_explain_every_household_bill(tiny: Path) -> None:
    _, meter_rows = rows_of(tiny / "landing" / "reference/meters_20240229.csv")
    meters_of: dict[str, list[list[str]]] = defaultdict(list)
    for r in meter_rows:
        if r[1] == "CUSTOMER":
            meters_of[r[2]].append(r)
    reads = {
        (r["meter_id"], r["read_at"]): Decimal(r["index_value"])
        for *_, r in accepted_rows(tiny, "register_reads")
        if r["register"] == "TOTAL"
    }
    billed: dict[str, Decimal] = defaultdict(Decimal)
    period: dict[str, tuple[str, str, str]] = {}
    lines = [r for *_, r in accepted_rows(tiny, "bill_lines")]
    final = {}
    for r in lines:
        final[r["export_id"]] = max(final.get(r["export_id"], ""), r["export_version"])
    for r in lines:
        if (
            r["bill_type"] == "REGULAR"
            and r["tariff_code"] == "SH"
            and r["export_version"] == final[r["export_id"]]
        ):
            billed[r["bill_id"]] += Decimal(r["kwh"])
            period[r["bill_id"]] = (r["customer_id"], r["period_start"], r["period_end"])
    checked = rolled = 0
    for bill, (customer, start, end) in period.items():
        if len(meters_of[customer]) != 1:
            continue
        meter_id, digits = meters_of[customer][0][0], int(meters_of[customer][0][7])
        opening, closing = (
            reads.get((meter_id, f"{start}T00:00:00")),
            reads.get((meter_id, f"{end}T00:00:00")),
        )
        if opening is None or closing is None:
            continue
        rolled += closing < opening
        assert (closing - opening + 10**digits) % 10**digits == billed[bill], bill  # rollover at 10^digits
        checked += 1
    assert checked > 500 and rolled >= 1


def test_planted_fault_lines_show_the_fault(tiny: Path) -> None:
    faults = faults_of(tiny)
    kinds = set(faults["kind"])
    assert {
        "short_gap",
        "negative_kwh",
        "spike",
        "long_gap",
        "long_gap_no_like_day",
        "estimated_upstream",
        "correction",
        "late_delivery",
        "duplicate",
        "truncated_gzip",
        "missing_column",
        "not_utf8",
        "bad_enum",
        "bad_date",
        "bad_timestamp",
        "wrong_field_count",
        "negative_regular_kwh",
        "adjustment",
        "reissued_export",
        "reissued_bill",
        "rollover",
        "meter_change",
    } <= kinds
    files: dict[str, list[list[str]]] = {}

    def row(file: str, line: int) -> dict[str, str]:
        if file not in files:
            header, data = rows_of(tiny / "landing" / file)
            files[file] = [header, *data]
        return dict(zip(files[file][0], files[file][line - 1], strict=False))

    for f in faults.itertuples():
        if f.kind == "negative_kwh":
            assert Decimal(row(f.file, int(f.line))["kwh"]) < 0
        elif f.kind == "estimated_upstream":
            assert row(f.file, int(f.line))["quality"] == "E"
        elif f.kind == "bad_enum" and f.dataset == "bill_lines":
            assert row(f.file, int(f.line))["component"] not in COMPONENTS
        elif f.kind == "bad_enum" and f.dataset == "payments":
            assert row(f.file, int(f.line))["channel"] not in CHANNELS
        elif f.kind == "negative_regular_kwh":
            r = row(f.file, int(f.line))
            assert r["bill_type"] == "REGULAR" and Decimal(r["kwh"]) < 0
        elif f.kind == "meter_change":
            assert row(f.file, int(f.line))["read_type"] == f.key


def test_expected_quarantine_per_file_matches_the_fault_log(tiny: Path) -> None:
    per_file: dict[str, int] = defaultdict(int)
    for file, _ in quarantined_lines(tiny):
        per_file[file] += 1
    summary = summary_of(tiny)["files"]
    assert {p: i["quarantined"] for p, i in summary.items() if i["quarantined"]} == dict(per_file)
    assert sum(per_file.values()) >= 9


def test_fault_rate_zero_gives_clean_data(tmp_path: Path) -> None:
    summary = generate(tmp_path, customers=120, start="2024-01", end="2024-02", seed=2, fault_rate=0.0)
    assert summary.rejected_files == 0 and summary.quarantined_rows == 0
    assert len(faults_of(tmp_path)) == 0
    mm = truth(tmp_path, "meter_monthly")
    assert (mm["energy_kwh"] == mm["true_energy_kwh"]).all()
    assert (mm["actual_intervals"] == mm["expected_intervals"]).all()


def test_cashless_share_rises_to_all_but_a_few_customers(tiny: Path) -> None:
    assert household_cashless_share(np.datetime64("2024-01", "M")) == pytest.approx(0.84)
    assert household_cashless_share(np.datetime64("2025-09", "M")) == pytest.approx(0.99)
    assert household_cashless_share(np.datetime64("2027-01", "M")) == pytest.approx(0.99)  # stays
    kpis = truth(tiny, "kpis_company")
    assert kpis["cashless_customer_pct"].between(75, 95).all()
    assert (kpis["cashless_amount_pct"] > kpis["cashless_customer_pct"]).all()  # businesses pay by bank


# ---------------------------------------------------------------- a medium company over a year


def test_class_mix_by_count_and_by_kwh(medium: Path) -> None:
    _, customers = rows_of(medium / "landing" / "reference/customers_20241130.csv")
    classes = pd.Series([r[4] for r in customers])
    assert 0.92 <= (classes == "RESIDENTIAL").mean() <= 0.94
    sales = truth(medium, "sales_monthly")
    share = sales.groupby("customer_class")["kwh_sold"].sum().astype(float)
    share = share / share.sum() * 100
    assert 42 <= share["RESIDENTIAL"] <= 48
    assert 35 <= share["INDUSTRIAL"] <= 42
    assert 6 <= share["COMMERCIAL"] <= 9
    assert 2 <= share["AGRICULTURE"] <= 4
    assert 4 <= share["PUBLIC_ADMIN"] + share["OTHER"] <= 6


def test_loss_rate_over_a_year_is_near_three_and_a_half_percent(medium: Path) -> None:
    kpis = truth(medium, "kpis_company").set_index("period")
    assert 3.0 <= kpis.loc["2024-12", "loss_rate_ytd_pct"] <= 4.0
    assert (
        kpis["loss_rate_pct"].min() < kpis.loc["2024-12", "loss_rate_ytd_pct"] < kpis["loss_rate_pct"].max()
    )
    assert kpis.loc["2024-12", "plan_loss_rate_pct"] == Decimal(
        f"{kpis.loc['2024-12', 'loss_rate_ytd_pct'] + 1.04:.2f}"
    )
    assert kpis["kwh_sold_ytd_yoy_pct"].isna().all()  # no 2023 in the data


def test_operations_are_calibrated_to_the_report_and_every_column_carries_information(tmp_path: Path) -> None:
    """At a sixteenth of full size: ~2,190 requests and ~294 inspections a month, a hit rate near 3 %,
    ~1.5 million đồng per violation, almost every request on time; read back from the files alone."""
    generate(tmp_path, customers=30_000, start="2025-01", end="2025-09", seed=7, fault_rate=0.01)
    ops = tmp_path / "landing" / "operations"
    requests = duckdb.sql(f"select * from read_csv('{ops}/service_requests_*.csv', all_varchar = true)").df()
    inspections = duckdb.sql(f"select * from read_csv('{ops}/inspections_*.csv', all_varchar = true)").df()
    valid = requests[~requests["request_id"].str.startswith("SRX")]
    final = valid.groupby("request_id").last()  # files are read in name order: the last delivery wins
    per_month = final["received_at"].str[:7].value_counts()
    assert per_month.between(0.9 * 35_000 / 16, 1.1 * 35_000 / 16).all()
    assert (valid.groupby("request_id").size() > 1).sum() > 100  # open at a month's end, delivered again
    resolved = final[final["status"] == "RESOLVED"]
    on_time = (resolved["closed_at"] <= resolved["due_at"]).mean()
    assert 0.97 < on_time < 1.0
    assert set(final["status"]) == {"RESOLVED", "CANCELLED", "OPEN"}
    assert final["escalated"].value_counts()["true"] > 10
    assert final["customer_id"].isna().sum() > 10 and set(final["channel"]) == set(REQUEST_CHANNELS)
    inspected = (
        inspections[~inspections["inspection_id"].str.startswith("INX")].groupby("inspection_id").last()
    )
    assert (
        inspected["inspected_on"].str[:7].value_counts().between(0.85 * 4_700 / 16, 1.15 * 4_700 / 16).all()
    )
    violations = inspected[inspected["result"] == "VIOLATION"]
    assert 0.02 < len(violations) / len(inspected) < 0.04
    per_violation = violations["recovered_vnd"].astype(float).mean()
    assert 1.2e6 < per_violation < 1.8e6
    assert set(inspected["result"]) == {"NO_VIOLATION", "VIOLATION", "NOT_ACCESSIBLE"}
