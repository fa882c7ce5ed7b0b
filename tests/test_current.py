"""The current reference tables kept between runs (etl.current): read back while the raw snapshots and the
SQL are the ones they came from, built again from every snapshot as soon as either changes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from etl import current
from etl.lake import aggregates_dir
from etl.settings import Settings
from tests.lakefixtures import memory_connection, write_raw_file


def customer(customer_id: str, region: str, customer_class: str = "RESIDENTIAL") -> dict:
    return {
        "customer_id": customer_id,
        "customer_name": "x",
        "address": "x",
        "phone": "x",
        "customer_class": customer_class,
        "tariff_code": "RES",
        "region_code": region,
        "dt_id": "DT1",
        "connected_on": "2020-01-01",
    }


def regions(settings: Settings) -> tuple[bool, dict[str, str]]:
    """Load int_customers__current in a new session: whether the saved copy served, and each region."""
    con = memory_connection()
    try:
        served = current.load(con, settings, "int_customers__current", stage="aggregates")
        rows = con.execute("select customer_id, region_code from int_customers__current").fetchall()
    finally:
        con.close()
    return served, dict(rows)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path, memory_limit="1GB", threads=1)
    rows = [customer("C1", "R1"), customer("C2", "R1")]
    write_raw_file(settings, "customers", rows, seq=1, snapshot_date=date(2025, 1, 1))
    return settings


def test_the_saved_copy_serves_while_the_snapshots_are_the_same(settings: Settings) -> None:
    assert regions(settings) == (False, {"C1": "R1", "C2": "R1"})
    saved = aggregates_dir(settings, "_current") / "customers"
    assert (saved / "data.parquet").exists()
    assert len(json.loads((saved / "_sources.json").read_text(encoding="utf-8"))["files"]) == 1
    assert regions(settings) == (True, {"C1": "R1", "C2": "R1"})


def test_a_new_snapshot_builds_it_again_from_every_snapshot(settings: Settings) -> None:
    regions(settings)
    # the newer snapshot moves C1 and lists a new customer; C2, not in it, keeps its older row
    rows = [customer("C1", "R2"), customer("C3", "R3")]
    write_raw_file(settings, "customers", rows, seq=2, snapshot_date=date(2025, 3, 1))
    assert regions(settings) == (False, {"C1": "R2", "C2": "R1", "C3": "R3"})
    assert regions(settings) == (True, {"C1": "R2", "C2": "R1", "C3": "R3"})


def test_a_change_to_the_sql_builds_it_again(settings: Settings) -> None:
    regions(settings)
    listed = aggregates_dir(settings, "_current") / "customers" / "_sources.json"
    sources = json.loads(listed.read_text(encoding="utf-8"))
    listed.write_text(json.dumps(sources | {"sql_sha256": "0" * 64}), encoding="utf-8")
    assert regions(settings) == (False, {"C1": "R1", "C2": "R1"})
    assert json.loads(listed.read_text(encoding="utf-8")) == sources


def test_a_copy_without_its_list_is_not_taken_for_current(settings: Settings) -> None:
    regions(settings)
    (aggregates_dir(settings, "_current") / "customers" / "_sources.json").unlink()
    assert regions(settings)[0] is False


def test_the_checks_read_without_saving(settings: Settings) -> None:
    con = memory_connection()
    try:
        assert current.load(con, settings, "int_customers__current") is False
    finally:
        con.close()
    assert not (aggregates_dir(settings, "_current") / "customers").exists()


def test_on_s3_the_list_goes_up_after_the_data_it_vouches_for() -> None:
    from etl.objectstore import commit_rank

    folder = "lake/aggregates/_current/customers/"
    pushed = sorted([folder + "_sources.json", folder + "data.parquet"], key=lambda r: (commit_rank(r), r))
    assert pushed == [folder + "data.parquet", folder + "_sources.json"]
    keys = "lake/aggregates/_keys/"
    pushed = sorted([keys + "_state.json", keys + "payments.parquet"], key=lambda r: (commit_rank(r), r))
    assert pushed == [keys + "payments.parquet", keys + "_state.json"]
