"""The optional regions reference dataset (CONTRACT.md §3, v2): names in the marts, codes where none."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from etl.contract import DATASETS, dataset_for_file
from etl.ingest.run import ingest
from etl.marts.publish import add_region_names
from etl.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path / "home", threads=1, memory_limit="512MB")
    (s.landing / "reference").mkdir(parents=True)
    return s


def drop(settings: Settings, name: str, text: str) -> None:
    (settings.landing / "reference" / name).write_text(text, encoding="utf-8")


def marts_with_regions(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "create table mart_x as select * from (values ('DH', 1), ('VL', 2), ('ALL', 3)) as t (region_code, n)"
    )
    con.execute("create table other as select 'DH' as region_code")  # not a mart: left as it is
    add_region_names(con, settings)
    return con


def test_regions_is_an_optional_reference_dataset_of_the_contract() -> None:
    regions = DATASETS["regions"]
    assert regions.folder == "reference" and regions.key == ("region_code",)
    assert regions.required_columns == ("region_code", "region_name")
    assert dataset_for_file("reference", "regions_20250101.csv") is regions


def test_the_newest_snapshot_names_each_region_and_codes_stay_where_none_does(settings: Settings) -> None:
    drop(
        settings,
        "regions_20240101.csv",
        "region_code,region_name\nDH,Điện lực Đông Hà\nQT,Điện lực Quảng Trị\n",
    )
    drop(settings, "regions_20250101.csv", "region_code,region_name\nDH,Điện lực TP Đông Hà\n,no code\n")
    report = ingest(settings, "run-1")
    assert [(f.status, f.rows_accepted, f.rows_quarantined) for f in report.files] == [
        ("INGESTED", 2, 0),
        ("INGESTED", 1, 1),  # a row without its code is quarantined
    ]
    con = marts_with_regions(settings)
    assert con.execute("select region_code, region_name from mart_x order by n").fetchall() == [
        ("DH", "Điện lực TP Đông Hà"),
        ("VL", "VL"),
        ("ALL", "ALL"),
    ]
    assert [r[0] for r in con.execute("describe other").fetchall()] == ["region_code"]
    assert con.execute("select count(*) from duckdb_views() where not internal").fetchone() == (0,)


def test_without_a_regions_snapshot_the_marts_show_the_codes(settings: Settings) -> None:
    con = marts_with_regions(settings)
    assert con.execute("select region_name from mart_x order by n").fetchall() == [("DH",), ("VL",), ("ALL",)]


def test_the_generated_company_names_its_regions_in_the_marts(generated_company: Settings) -> None:
    files = sorted((generated_company.landing / "reference").glob("regions_*.csv"))
    assert len(files) == 1
    with open(files[0], encoding="utf-8", newline="") as f:
        header, *records = list(csv.reader(f))
    assert header == ["region_code", "region_name"]
    named = dict((code, name) for code, name in records)
    con = duckdb.connect(str(generated_company.marts_path), read_only=True)
    try:
        rows = con.execute(
            "select distinct region_code, region_name from mart_kpi_monthly order by all"
        ).fetchall()
        balance = con.execute(
            "select count(*) from mart_energy_balance_monthly where region_name is null"
        ).fetchone()
    finally:
        con.close()
    assert rows == sorted([("ALL", "ALL"), *named.items()])
    assert all(name.startswith("Điện lực ") for name in named.values())
    assert balance == (0,)
