"""DAG integrity: every DAG imports without error and carries tags, retries and docs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"
EXPECTED = {
    "meterflow_ingest_reference",
    "meterflow_ingest_readings",
    "meterflow_ingest_billing",
    "meterflow_marts",
}


@pytest.fixture(scope="module")
def dagbag():  # noqa: ANN201 - airflow DagBag
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_dags_import_without_errors(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_has_tags_retries_and_docs(dagbag, dag_id: str) -> None:  # noqa: ANN001
    dag = dagbag.dags[dag_id]
    assert "meterflow" in dag.tags
    assert dag.doc_md and len(dag.doc_md.strip()) > 100
    assert dag.default_args["retries"] >= 1
    for t in dag.tasks:
        assert t.retries >= 1, t.task_id


def test_marts_dag_is_scheduled_on_the_ingestion_assets(dagbag) -> None:  # noqa: ANN001
    marts = dagbag.dags["meterflow_marts"]
    ingest_outlets = {
        a.name
        for dag_id in EXPECTED - {"meterflow_marts"}
        for t in dagbag.dags[dag_id].tasks
        for a in t.outlets
    }
    assert ingest_outlets == {"meterflow_raw_reference", "meterflow_raw_readings", "meterflow_raw_billing"}
    assert {a.name for a in marts.timetable.asset_condition.objects} == ingest_outlets
    publish = marts.get_task("publish")
    assert publish.pool == "meterflow_duckdb"


def test_dag_files_keep_heavy_imports_inside_tasks() -> None:
    heavy = {"duckdb", "pyarrow", "great_expectations", "pandas", "numpy"}
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            assert not heavy & set(names), f"{path.name} imports {names} at module level"
            assert "etl" not in names, f"{path.name} imports etl at module level (parse time)"
