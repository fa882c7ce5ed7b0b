"""The marts checks read only the raw partitions the periods they reconcile need, with the same result."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etl import quality
from etl.errors import QualityError
from etl.models import raw_columns, register_parquet, run_model, set_periods
from etl.quality import prepare
from etl.settings import Settings
from tests.lakefixtures import memory_connection
from tests.test_quality import Lake, gx  # noqa: F401 (gx: the module's fixture)


def line(export: str, version: int, period: str, bill: str, line_no: int, kwh: str) -> dict[str, Any]:
    return {
        "export_id": export, "export_version": version, "billing_period": period, "bill_id": bill,
        "line_no": line_no, "customer_id": f"C-{bill}", "bill_type": "REGULAR",
        "period_start": date(2025, 8, 11), "period_end": date(2025, 9, 10), "tariff_code": "RES",
        "component": "BLOCK_1", "kwh": Decimal(kwh), "unit_price_vnd": Decimal(2000),
        "amount_vnd": Decimal(kwh) * 2000, "vat_vnd": Decimal(0), "issued_on": date(2025, 9, 12),
    }  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    lake = Lake(tmp_path / "home")
    lake.ingest("bill_lines", [line("CIS-A", 1, "2025-08", "1", 1, "10")])
    # An export billed in 2025-08 and 2025-09, replaced by a version 2 that moved its lines to 2025-06.
    lake.ingest(
        "bill_lines", [line("CIS-B", 1, "2025-09", "2", 1, "5"), line("CIS-B", 1, "2025-08", "3", 1, "7")]
    )
    lake.ingest("bill_lines", [line("CIS-B", 2, "2025-06", "2", 1, "6")])
    # Exports that share no id with 2025-09's: before and after it in export_id order.
    lake.ingest("bill_lines", [line("CIS-0", 1, "2025-07", "4", 1, "1")])
    lake.ingest("bill_lines", [line("CIS-C", 1, "2025-10", "5", 1, "2")])
    return lake.settings


def current_lines(files: list[Path], period: str) -> list[tuple]:
    con = memory_connection()
    register_parquet(con, "raw_bill_lines", files, raw_columns("bill_lines"))
    run_model(con, "stg_lake__bill_lines", "view")
    set_periods(con, [period])
    run_model(con, "int_bill_lines__latest_versions", "view")
    run_model(con, "int_bill_lines__current", "view")
    rows = con.execute("select * from int_bill_lines__current order by all").fetchall()
    con.close()
    return rows


def scoped_files(settings: Settings, periods: list[str]) -> list[Path]:
    con = memory_connection()
    try:
        return prepare._bill_line_files(con, settings, periods)
    finally:
        con.close()


def test_reconciliation_reads_the_periods_partitions_and_the_files_of_their_exports(
    settings: Settings,
) -> None:
    files = scoped_files(settings, ["2025-09"])
    names = sorted(f"{f.parent.name}/{int(f.stem[:9])}" for f in files)
    assert names == ["period=2025-06/3", "period=2025-08/2", "period=2025-09/2"]


@pytest.mark.parametrize("period", ["2025-06", "2025-07", "2025-08", "2025-09", "2025-10"])
def test_scoped_bill_lines_give_the_same_current_lines_as_every_file(settings: Settings, period: str) -> None:
    from etl.lake import raw_files

    every = raw_files(settings, "bill_lines")
    assert current_lines(scoped_files(settings, [period]), period) == current_lines(every, period)


def test_newest_tariffs_snapshot_only(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "home")
    assert prepare._newest_snapshot_files(lake.settings, "tariffs") == []
    for snapshot in (date(2025, 1, 1), date(2025, 6, 1), date(2024, 1, 1)):
        tariff = {"tariff_code": "RES", "customer_class": "RESIDENTIAL", "component": "BLOCK_1",
                  "price_vnd_per_kwh": Decimal(1984), "valid_from": date(2025, 5, 10),
                  "_snapshot_date": snapshot}  # fmt: skip
        lake.ingest("tariffs", [tariff])
    files = prepare._newest_snapshot_files(lake.settings, "tariffs")
    assert [f.parent.name for f in files] == ["snapshot=2025-06-01"]


def outcomes(settings: Settings) -> dict[tuple[str, str], tuple]:
    from tests.test_quality import read_results

    return {
        k: (v["rows_checked"], v["rows_failed"], v["passed"])
        for k, v in read_results(settings, "raw").items()
    }


@pytest.mark.usefixtures("gx")
def test_the_scoped_raw_check_reads_only_this_runs_manifest_rows(tmp_path: Path) -> None:
    from etl.lake import manifest_files
    from tests.test_quality import RUN, interval, meter

    lake = Lake(tmp_path)
    lake.ingest(
        "interval_reads", [interval("M1", "2025-09-02 00:00", "-1")], run_id="run-0"
    )  # checked before
    lake.ingest("interval_reads", [interval("M1", "2025-09-01 00:00", "1.5")], quarantined=1)
    lake.ingest("meters", [meter("M1", date(2020, 1, 1))], rows_in=3)  # 1 accepted + 0 quarantined != 3
    earlier, *this_run = manifest_files(lake.settings)
    with pytest.raises(QualityError):
        quality.check(lake.settings, RUN, "raw", periods=["2025-09"])
    everything = outcomes(lake.settings)
    assert everything[("raw.manifest", "unexpected_rows(rows_in_conserved)")] == (2, 1, False)

    earlier.write_bytes(b"not a Parquet file: the scoped check must not open it")
    with pytest.raises(QualityError):
        quality.check(lake.settings, RUN, "raw", periods=["2025-09"], run_files=[p.stem for p in this_run])
    assert outcomes(lake.settings) == everything
