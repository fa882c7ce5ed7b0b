"""End to end on a generated company: the marts equal the generator's ground truth, whichever way they
are produced (one `meterflow run`, files dropped in two batches, or the Airflow DAGs)."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.pipeline import run
from etl.settings import Settings

FIGURE_MARTS = ("mart_kpi_monthly", "mart_sales_monthly", "mart_energy_balance_monthly")
REL = 1e-9  # ratios are DOUBLE; sums of kWh and VND are exact DECIMAL and compared exactly


def mart_rows(marts: Path) -> dict[str, list[tuple]]:
    """Every figure mart's rows, sorted, from a published marts file."""
    con = duckdb.connect(str(marts), read_only=True)
    try:
        return {t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr) for t in FIGURE_MARTS}
    finally:
        con.close()


def same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        return abs(float(a) - float(b)) <= REL * max(1.0, abs(float(b)))
    return a == b


def compare_with_truth(settings: Settings, mart: str, truth: str, keys: tuple[str, ...]) -> int:
    """Compare every column the truth file has with the mart's; returns figures compared."""
    con = duckdb.connect()
    con.execute(f"attach '{settings.marts_path}' as m (read_only)")
    truth_rows = con.execute(f"select * from '{settings.home / 'truth' / truth}'").fetchall()
    truth_cols = [d[0] for d in con.description]
    mart_cols = {r[0] for r in con.execute(f"describe m.{mart}").fetchall()}
    cols = [c for c in truth_cols if c in mart_cols]
    mart = {
        tuple(r[: len(keys)]): r[len(keys) :]
        for r in con.execute(f"select {', '.join(keys)}, {', '.join(cols)} from m.{mart}").fetchall()
    }
    checked, wrong = 0, []
    for row in truth_rows:
        t = dict(zip(truth_cols, row, strict=True))
        key = tuple(t[k] for k in keys)
        assert key in mart, f"{key} missing from {mart}"
        for col, value in zip(cols, mart[key], strict=True):
            checked += 1
            if not same(value, t[col]):
                wrong.append((key, col, value, t[col]))
    assert wrong == [], f"{len(wrong)} of {checked} figures differ, e.g. {wrong[:5]}"
    return checked


def test_company_and_region_kpis_equal_the_ground_truth(generated_company: Settings) -> None:
    keys = ("period", "region_code")
    company = compare_with_truth(generated_company, "mart_kpi_monthly", "kpis_company.parquet", keys)
    regions = compare_with_truth(generated_company, "mart_kpi_monthly", "kpis_region.parquet", keys)
    assert company >= 21 * 15 and regions >= 2 * 21 * 15


def test_sales_and_energy_balance_equal_the_ground_truth(generated_company: Settings) -> None:
    assert compare_with_truth(
        generated_company,
        "mart_sales_monthly",
        "sales_monthly.parquet",
        ("period", "region_code", "customer_class", "tariff_code"),
    )
    assert compare_with_truth(
        generated_company, "mart_energy_balance_monthly", "energy_balance.parquet", ("period", "node_id")
    )


def test_validated_energy_equals_the_ground_truth_where_the_rules_can_recover_it(
    generated_company: Settings,
) -> None:
    lake = generated_company.lake / "validated" / "meter_monthly"
    truth = generated_company.home / "truth" / "meter_monthly.parquet"
    rows = duckdb.sql(
        f"""
        select t.period, t.meter_id, v.energy_kwh, t.true_energy_kwh
        from '{truth}' as t
        left join read_parquet('{lake}/*/*.parquet') as v using (period, meter_id)
        where t.recoverable
        """
    ).fetchall()
    assert len(rows) > 100
    wrong = [r for r in rows if r[2] is None or r[2] != r[3]]
    assert wrong == []


def test_a_second_run_without_new_files_changes_nothing(generated_company: Settings) -> None:
    before = mart_rows(generated_company.marts_path)
    mtime = generated_company.marts_path.stat().st_mtime_ns
    report = run(generated_company, run_id="test__rerun")
    assert report.up_to_date
    assert report.ingest.changed is False
    assert generated_company.marts_path.stat().st_mtime_ns == mtime
    assert mart_rows(generated_company.marts_path) == before


def _copy_landing(source: Settings, home: Path, files: list[str]) -> None:
    for rel in files:
        dest = home / "landing" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.landing / rel, dest)


def assert_same_marts(a: Path, b: Path) -> None:
    rows_a, rows_b = mart_rows(a), mart_rows(b)
    for table in FIGURE_MARTS:
        assert len(rows_a[table]) == len(rows_b[table]), table
        diff = [(x, y) for x, y in zip(rows_a[table], rows_b[table], strict=True) if x != y]
        assert diff == [], f"{table}: {len(diff)} rows differ, e.g. {diff[:2]}"


def test_files_dropped_in_two_batches_publish_the_same_marts(
    generated_company: Settings, tmp_path: Path
) -> None:
    drops = json.loads((generated_company.home / "truth" / "drops.json").read_text(encoding="utf-8"))
    months = sorted(drops)
    settings = Settings(home=tmp_path, threads=2, memory_limit="2GB")
    _copy_landing(generated_company, tmp_path, [f for m in months[:11] for f in drops[m]])
    first = run(settings, run_id="test__batch1")
    assert first.published == settings.marts_path
    _copy_landing(generated_company, tmp_path, [f for m in months[11:] for f in drops[m]])
    second = run(settings, run_id="test__batch2")
    assert second.published == settings.marts_path
    assert_same_marts(settings.marts_path, generated_company.marts_path)


@pytest.mark.slow
def test_the_airflow_dags_publish_the_same_marts_as_meterflow_run(
    generated_company: Settings, tmp_path: Path
) -> None:
    from etl.devtools.airflow_local import DAG_ORDER, run_dags

    files = [str(p.relative_to(generated_company.landing)) for p in generated_company.landing.glob("*/*")]
    _copy_landing(generated_company, tmp_path, files)
    settings = Settings(home=tmp_path, threads=2, memory_limit="2GB")
    results = run_dags(settings)
    assert [(dag_id, state) for dag_id, state, _ in results] == [(d, "success") for d in DAG_ORDER]
    assert_same_marts(settings.marts_path, generated_company.marts_path)
