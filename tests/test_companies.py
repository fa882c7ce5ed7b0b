"""A corporation of companies: the companies file, the DAGs generated from it, and the roll-up marts file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.companies import CompaniesError, load_corporation

DAGS = Path(__file__).resolve().parent.parent / "dags"

TWO_COMPANIES = """
[corporation]
code = "NPC"
home = "npc"

[[company]]
code = "PCA"
home = "pca"
timezone = "Asia/Ho_Chi_Minh"

[[company]]
code = "PCB"
home = "/srv/pcb"
timezone = "Asia/Bangkok"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "companies.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_companies_file_lists_codes_homes_and_time_zones(tmp_path: Path) -> None:
    corp = load_corporation(write(tmp_path, TWO_COMPANIES))
    assert corp.code == "NPC"
    assert corp.home == tmp_path / "npc"
    assert [(c.code, c.home, c.timezone) for c in corp.companies] == [
        ("PCA", tmp_path / "pca", "Asia/Ho_Chi_Minh"),
        ("PCB", Path("/srv/pcb"), "Asia/Bangkok"),
    ]
    pcb = corp.company("pcb")
    assert pcb.environment() == {"METERFLOW_HOME": "/srv/pcb", "METERFLOW_TIMEZONE": "Asia/Bangkok"}
    assert pcb.settings().home == Path("/srv/pcb")
    assert corp.settings().marts_path == tmp_path / "npc" / "warehouse" / "marts.duckdb"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('timezone = "Asia/Bangkok"', 'timezone = "Asia/Quang_Tri"'),
            r"#2: timezone 'Asia/Quang_Tri' is not",
        ),
        (('code = "PCB"', 'code = "PCA"'), r"#2: code PCA is already listed"),
        (('home = "/srv/pcb"', 'home = "pca"'), r"#2: home .*pca is already the home of PCA"),
        (('code = "PCB"', 'code = "pc-b"'), r"#2: code 'pc-b' must be 2 to 16 capital letters"),
        (('code = "PCB"', 'code = "NPC"'), r"#2: code NPC is the corporation's own code"),
        (('home = "/srv/pcb"', 'hme = "/srv/pcb"'), r"#2: unknown key\(s\) \['hme'\]"),
        (('timezone = "Asia/Bangkok"', ""), r"#2: `timezone` is required"),
        (('code = "PCB"', 'code = "PCB'), r"not valid TOML: .*line 12"),
    ],
)
def test_companies_file_errors_name_the_file_and_entry(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, TWO_COMPANIES.replace(*change))
    with pytest.raises(CompaniesError, match=message) as caught:
        load_corporation(path)
    assert str(path) in str(caught.value)


def test_a_corporation_needs_a_company(tmp_path: Path) -> None:
    with pytest.raises(CompaniesError, match="no \\[\\[company\\]\\] entry"):
        load_corporation(write(tmp_path, '[corporation]\ncode = "NPC"\nhome = "npc"\n'))
    with pytest.raises(CompaniesError, match="cannot read"):
        load_corporation(tmp_path / "missing.toml")


def test_dags_are_generated_per_listed_company(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    path = write(tmp_path, TWO_COMPANIES + '\n[[company]]\ncode = "PC_C"\nhome = "c"\ntimezone = "UTC"\n')
    monkeypatch.setenv("METERFLOW_COMPANIES", str(path))
    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    per_company = {"ingest_reference", "ingest_readings", "ingest_billing", "ingest_operations", "marts"}
    expected = {f"meterflow_{code}_{name}" for code in ("pca", "pcb", "pc_c") for name in per_company}
    assert set(bag.dags) == expected | {"meterflow_corporation"}
    marts = bag.dags["meterflow_pcb_marts"]
    assert {a.name for a in marts.timetable.asset_condition.objects} == {
        f"meterflow_pcb_raw_{family}" for family in ("reference", "readings", "billing", "operations")
    }
    assert marts.get_task("publish").pool == "meterflow_duckdb_pcb"
    assert [a.name for a in marts.get_task("publish").outlets] == ["meterflow_pcb_marts"]
    corporation = bag.dags["meterflow_corporation"]
    assert {a.name for a in corporation.timetable.asset_condition.objects} == {
        "meterflow_pca_marts",
        "meterflow_pcb_marts",
        "meterflow_pc_c_marts",
    }


def test_a_company_task_works_in_its_own_home_and_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    import etl.pipeline

    monkeypatch.setenv("METERFLOW_COMPANIES", str(write(tmp_path, TWO_COMPANIES)))
    monkeypatch.setenv("METERFLOW_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("METERFLOW_TIMEZONE", raising=False)
    seen: list[tuple[Path, str | None]] = []

    def stage_publish(settings, _run_id):  # noqa: ANN001, ANN202
        import os

        seen.append((settings.home, os.environ.get("METERFLOW_TIMEZONE")))
        return settings.marts_path

    monkeypatch.setattr(etl.pipeline, "stage_publish", stage_publish)
    dag = DagBag(str(DAGS)).dags["meterflow_pcb_marts"]
    context = {"dag": dag, "run_id": "manual__2025-03-01T00:00:00+00:00"}
    assert dag.get_task("publish").python_callable(**context) == "/srv/pcb/warehouse/marts.duckdb"
    assert seen == [(Path("/srv/pcb"), "Asia/Bangkok")]


@pytest.fixture(scope="module")
def corporation(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - etl.companies.Corporation
    """Two tiny generated companies run with `meterflow run`, and their corporation's roll-up published."""
    from etl.corporation import publish_corporation
    from etl.generate import generate
    from etl.pipeline import run

    base = tmp_path_factory.mktemp("corporation")
    corp = load_corporation(write(base, TWO_COMPANIES.replace("/srv/pcb", "pcb")))
    for seed, company in enumerate(corp.companies, start=5):
        generate(company.home, customers=30, start="2024-11", end="2025-02", seed=seed, fault_rate=0.02)
        assert run(company.settings(), run_id=f"test__{company.code}").published
    assert publish_corporation(corp, "test__rollup") == corp.settings().marts_path
    return corp


def rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_rollup_holds_every_company_mart_row_with_its_code(corporation) -> None:  # noqa: ANN001
    marts = corporation.settings().marts_path
    tables = [r[0] for r in rows(marts, "select table_name from duckdb_tables() order by 1")]
    assert "mart_kpi_monthly" in tables and "mart_sales_monthly" in tables
    for company in corporation.companies:
        own = company.settings().marts_path
        assert [r[0] for r in rows(own, "select table_name from duckdb_tables() order by 1")] == tables
        for table in tables:
            theirs = sorted(rows(own, f"select * from {table}"), key=repr)
            rolled = sorted(
                rows(
                    marts,
                    f"select * exclude (company_code) from {table} where company_code = '{company.code}'",
                ),
                key=repr,
            )
            assert rolled == theirs, (company.code, table)
    codes = {r[0] for r in rows(marts, "select distinct company_code from mart_sales_monthly")}
    assert codes == {"PCA", "PCB"}


def test_corporation_kpis_are_sums_first_then_ratios(corporation) -> None:  # noqa: ANN001
    marts = corporation.settings().marts_path
    columns = (
        "period, kwh_sold, revenue_vnd, kwh_received, paying_customers, cashless_customers, "
        "paid_amount_vnd, cashless_amount_vnd, plan_kwh_sold"
    )
    companies: dict[str, list[tuple]] = {}
    for company in corporation.companies:
        for row in rows(
            company.settings().marts_path,
            f"select {columns} from mart_kpi_monthly where region_code = 'ALL' order by period",
        ):
            companies.setdefault(row[0], []).append(row)
    corp = rows(
        marts,
        f"select {columns}, avg_price_vnd_per_kwh, loss_rate_pct, cashless_customer_pct, kwh_sold_ytd, "
        "plan_attainment_pct, plan_loss_rate_pct from mart_kpi_monthly "
        "where company_code = 'NPC' order by period",
    )
    assert [r[0] for r in corp] == sorted(companies) == ["2024-11", "2024-12", "2025-01", "2025-02"]
    ytd: dict[str, Decimal] = {}
    for row in corp:
        period, parts = row[0], companies[row[0]]
        assert len(parts) == 2
        sums = [sum((p[i] for p in parts), Decimal(0)) for i in range(1, 9)]
        assert list(row[1:9]) == sums
        kwh, revenue, received, paying, cashless = sums[0], sums[1], sums[2], sums[3], sums[4]
        assert row[9] == pytest.approx(float(revenue / kwh))
        assert row[10] == pytest.approx(float((received - kwh) / received * 100))
        assert row[11] == pytest.approx(float(cashless) / float(paying) * 100)
        year = period[:4]
        ytd[year] = ytd.get(year, Decimal(0)) + kwh
        assert row[12] == ytd[year]
        assert row[13] == pytest.approx(float(ytd[year] / sums[7] * 100))
        assert row[14] is None  # no corporate loss-rate target in the exports
