"""End to end on a generated company: the marts equal the generator's ground truth, whichever way they
are produced (one `meterflow run`, files dropped in two batches, or the Airflow DAGs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from etl.marts import aggregates
from etl.marts.publish import publish
from etl.pipeline import run
from etl.settings import Settings
from etl.synth.compare import compare_with_truth

FIGURE_MARTS = (
    "mart_kpi_monthly",
    "mart_sales_monthly",
    "mart_energy_balance_monthly",
    "mart_service_monthly",
    "mart_service_mix_monthly",
    "mart_inspections_monthly",
)
# computed from the figures, not compared with the truth
LOSS_MARTS = ("mart_loss_hotspots_monthly", "mart_inspection_candidates")


def mart_rows(marts: Path, tables: tuple[str, ...] = FIGURE_MARTS) -> dict[str, list[tuple]]:
    """Every figure mart's rows (or those of `tables`), sorted, from a published marts file."""
    con = duckdb.connect(str(marts), read_only=True)
    try:
        return {t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def test_every_mart_row_and_figure_equals_the_ground_truth(generated_company: Settings) -> None:
    found = {c.truth: c for c in compare_with_truth(generated_company)}
    assert [c.describe() for c in found.values() if not c.ok] == []
    # every table was compared in full: 21 months, two regions, five network nodes, every meter
    assert found["landing files"].figures == found["landing files"].rows > 100
    assert found["kpis_company"].rows == 21 and found["kpis_company"].figures >= 21 * 20
    assert found["kpis_region"].rows == 2 * 21
    assert found["energy_balance"].rows >= 21 * 5 and found["energy_balance"].figures >= 21 * 5 * 7
    assert found["meter_monthly"].rows >= 21 * 7 and found["meter_monthly"].figures >= 21 * 7 * 9
    assert found["sales_monthly"].rows > 100
    # operations: every month for the company and both regions, every figure
    assert found["service_monthly"].rows == found["inspections_monthly"].rows == 21 * 3
    assert (
        found["service_monthly"].figures == 21 * 3 * 9 and found["inspections_monthly"].figures == 21 * 3 * 8
    )


def test_validated_energy_equals_the_true_energy_where_the_rules_can_recover_it(
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


MART_CHANGES = [
    ("insert into m.mart_kpi_monthly (period, region_code) values ('2031-01', 'ALL')", "extra"),
    ("insert into m.mart_energy_balance_monthly (period, node_id) values ('2025-09', 'NOPE')", "extra"),
    (
        "delete from m.mart_sales_monthly where period = '2025-09' and customer_class = 'RESIDENTIAL'",
        "missing",
    ),
    (
        "update m.mart_kpi_monthly set paid_amount_vnd = paid_amount_vnd + 0.000001 "
        "where period = '2025-01' and region_code = 'ALL'",
        "wrong",
    ),
    (
        "update m.mart_energy_balance_monthly "
        "set estimated_share_pct = 1e-6 + coalesce(estimated_share_pct, 0) where period = '2025-02'",
        "wrong",
    ),
    (
        "update m.mart_service_monthly set backlog_end = backlog_end + 1 "
        "where period = '2024-06' and region_code = 'ALL'",
        "wrong",
    ),
    ("delete from m.mart_inspections_monthly where period = '2025-09' and region_code <> 'ALL'", "missing"),
]


@pytest.mark.parametrize(("change", "found"), MART_CHANGES)
def test_the_truth_comparison_finds_an_extra_a_missing_and_a_wrong_row(
    generated_company: Settings, tmp_path: Path, change: str, found: str
) -> None:
    home = tmp_path / "home"
    (home / "warehouse").mkdir(parents=True)
    shutil.copy(generated_company.marts_path, home / "warehouse" / "marts.duckdb")
    (home / "truth").symlink_to(generated_company.home / "truth")
    (home / "lake").symlink_to(generated_company.lake)
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse' / 'marts.duckdb'}' as m")
    con.execute(change)
    con.close()
    bad = [c for c in compare_with_truth(Settings(home=home)) if not c.ok]
    assert len(bad) == 1 and getattr(bad[0], found), [b.describe() for b in bad]


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


def assert_same_marts(a: Path, b: Path, tables: tuple[str, ...] = FIGURE_MARTS) -> None:
    rows_a, rows_b = mart_rows(a, tables), mart_rows(b, tables)
    for table in tables:
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
    assert_same_marts(settings.marts_path, generated_company.marts_path, FIGURE_MARTS + LOSS_MARTS)


def test_a_lake_without_kept_signals_builds_them_and_lists_the_same_candidates(
    generated_company: Settings, tmp_path: Path
) -> None:
    # a lake whose aggregates were built before the customer signals were kept in them
    shutil.copytree(generated_company.lake, tmp_path / "lake")
    shutil.rmtree(tmp_path / "lake" / "aggregates" / "int_customer_signals__monthly")
    settings = Settings(home=tmp_path, threads=2, memory_limit="2GB")
    report = aggregates.build(settings, "test__signals")
    assert report.periods_rebuilt == []
    assert report.rows["int_customer_signals__monthly"] > 0
    publish(settings, "test__signals")
    listed = mart_rows(settings.marts_path, LOSS_MARTS)["mart_inspection_candidates"]
    assert len(listed) > 0
    assert_same_marts(settings.marts_path, generated_company.marts_path, LOSS_MARTS)


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


def text_bytes(path: Path) -> int:
    """The bytes of CSV text in a landing file: a .gz file's inflated size (its gzip trailer's ISIZE)."""
    if path.name.endswith(".gz"):
        with path.open("rb") as fh:
            fh.seek(-4, 2)
            return int.from_bytes(fh.read(4), "little")
    return path.stat().st_size


@pytest.mark.slow
def test_a_company_of_a_tenth_of_full_size_equals_its_truth(tmp_path_factory: pytest.TempPathFactory) -> None:
    """48,000 customers over 21 months: monthly bill exports and snapshots of tens of MB, each read in
    several chunks; every landing file's rows and every published figure against the truth."""
    from etl.generate import generate

    home = tmp_path_factory.mktemp("tenth")
    generate(home, customers=48_000, start="2024-01", end="2025-09", seed=7, fault_rate=0.01)
    settings = Settings(home=home, threads=2, memory_limit="4GB")
    big = [p for p in settings.landing.glob("*/*") if text_bytes(p) > 2 * settings.read_chunk_bytes]
    assert {p.name.split("_2")[0] for p in big} >= {"bill_lines"}  # each read in three chunks or more
    assert run(settings, run_id="test__tenth").published == settings.marts_path
    found = compare_with_truth(settings)
    assert [c.describe() for c in found if not c.ok] == []
    assert sum(c.figures for c in found) > 100_000
