"""DAG integrity: every DAG imports without error and carries tags, retries and docs."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"
EXPECTED = {
    "meterflow_ingest_reference",
    "meterflow_ingest_readings",
    "meterflow_ingest_billing",
    "meterflow_ingest_operations",
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
    assert ingest_outlets == {
        "meterflow_raw_reference",
        "meterflow_raw_readings",
        "meterflow_raw_billing",
        "meterflow_raw_operations",
    }
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


@dataclass
class Stages:
    """Stand-ins for etl.pipeline's stages: what each returns, and what each was called with."""

    ingest_changed: bool = False
    published: Path | None = None
    calls: list[tuple[str, object]] = field(default_factory=list)

    def stage_ingest(self, _settings: object, _run_id: str, folders: tuple[str, ...]) -> SimpleNamespace:
        self.calls.append(("ingest", folders))
        return SimpleNamespace(
            changed=self.ingest_changed, by_dataset=lambda: [{"dataset": "interval_reads"}]
        )

    def stage_marts(self, _settings: object, _run_id: str, vee_periods: list[str]) -> SimpleNamespace:
        self.calls.append(("marts", vee_periods))
        return SimpleNamespace(periods_rebuilt=sorted(vee_periods))

    def stage_publish(self, _settings: object, _run_id: str) -> Path | None:
        self.calls.append(("publish", None))
        return self.published


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> Stages:
    import etl.pipeline
    import etl.settings

    stand_in = Stages()
    monkeypatch.setattr(etl.settings, "get_settings", lambda: "settings")
    for name in ("stage_ingest", "stage_marts", "stage_publish"):
        monkeypatch.setattr(etl.pipeline, name, getattr(stand_in, name))
    return stand_in


def run_task(dag, task_id: str, *args: object) -> object:  # noqa: ANN001 - airflow DAG
    """Call a task's function as the worker would, with the context it reads."""
    context = {"dag": dag, "run_id": "manual__2025-03-01T00:00:00+00:00"}
    return dag.get_task(task_id).python_callable(*args, **context)


def test_ingestion_emits_its_asset_only_when_a_file_was_new(dagbag, stages: Stages) -> None:  # noqa: ANN001
    from airflow.sdk.exceptions import AirflowSkipException

    dag = dagbag.dags["meterflow_ingest_readings"]
    assert [a.name for a in dag.get_task("ingest").outlets] == ["meterflow_raw_readings"]
    # a skipped task emits no asset event, so the marts DAG is not woken
    with pytest.raises(AirflowSkipException, match="no new file in readings"):
        run_task(dag, "ingest")
    stages.ingest_changed = True
    assert run_task(dag, "ingest") == [{"dataset": "interval_reads"}]
    assert stages.calls == [("ingest", ("readings",)), ("ingest", ("readings",))]


def test_marts_emit_their_asset_only_when_published(dagbag, stages: Stages) -> None:  # noqa: ANN001
    from airflow.sdk.exceptions import AirflowSkipException

    dag = dagbag.dags["meterflow_marts"]
    assert [a.name for a in dag.get_task("publish").outlets] == ["meterflow_marts"]
    with pytest.raises(AirflowSkipException, match="current"):
        run_task(dag, "publish")
    stages.published = Path("/data/warehouse/marts.duckdb")
    assert run_task(dag, "publish") == "/data/warehouse/marts.duckdb"


def test_vee_hands_its_periods_to_the_aggregates_before_publish(dagbag, stages: Stages) -> None:  # noqa: ANN001
    dag = dagbag.dags["meterflow_marts"]
    assert dag.get_task("aggregates").upstream_task_ids == {"vee"}
    assert dag.get_task("publish").upstream_task_ids == {"aggregates"}
    assert run_task(dag, "aggregates", ["2025-02", "2025-01"]) == ["2025-01", "2025-02"]
    assert stages.calls == [("marts", ["2025-02", "2025-01"])]
