"""meterflow's DAGs: one ingestion DAG per source family, and the marts DAG scheduled on their Assets.

Thin by design: each task calls one stage function of etl.pipeline, which the `meterflow run` command
calls too. Heavy libraries are imported inside the tasks, never at parse time. A task with an Asset outlet
skips itself (AirflowSkipException) when it has nothing to announce: Airflow emits a task's asset events
only when it succeeds, so the marts DAG wakes only when new files landed, and the marts Asset moves only
when new marts were published.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowSkipException

START = pendulum.datetime(2024, 1, 1, tz="Asia/Ho_Chi_Minh")

# One Asset per source family: an ingestion DAG updates it when it ingested (or rejected) new files.
RAW_ASSETS = {
    family: Asset(name=f"meterflow_raw_{family}", uri=f"meterflow://lake/raw/{family}")
    for family in ("reference", "readings", "billing", "operations")
}
MARTS_ASSET = Asset(name="meterflow_marts", uri="meterflow://warehouse/marts.duckdb")

# The DuckDB writer of the marts file runs alone: a pool of one slot (created by `make airflow`).
DUCKDB_POOL = "meterflow_duckdb"

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
}

FAMILIES = {
    "reference": ("reference",),
    "readings": ("readings",),
    "billing": ("billing", "payments"),
    "operations": ("operations",),
}


def run_id(context: Any) -> str:
    """The pipeline's run id: the DAG's id with Airflow's run id, unique across the four DAGs."""
    return f"{context['dag'].dag_id}__{context['run_id']}"


INGEST_DOC = """
### Ingest {family}

Reads every file in `landing/{folders}` that the lake has not seen (same bytes under any name are a
no-op), types it per CONTRACT.md, writes the raw layer and quarantines rows that break a rule, then checks
the raw layer with its Great Expectations suites. Rejected files and quarantined rows are logged and
recorded in `mart_data_quality`; they do not fail the task. A critical raw expectation does.

Idempotent: a re-run ingests only what is still new. Updates the `meterflow_raw_{family}` Asset, which
schedules `meterflow_marts`, only when a new file was ingested or rejected; otherwise the task is skipped
and the marts DAG is not woken.
"""


def ingestion_dag(family: str, folders: tuple[str, ...]) -> Any:
    """One ingestion DAG for a source family."""

    @dag(
        dag_id=f"meterflow_ingest_{family}",
        schedule="@hourly",
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["meterflow", "ingestion", family],
        doc_md=INGEST_DOC.format(family=family, folders="{" + ",".join(folders) + "}/"),
    )
    def ingest_family() -> None:
        @task(outlets=[RAW_ASSETS[family]])
        def ingest(**context: Any) -> list[dict[str, Any]]:
            """Ingest new files of this family and return the per-dataset accounting; skipped (no Asset
            event) when no file was new."""
            from etl.pipeline import stage_ingest
            from etl.settings import get_settings

            report = stage_ingest(get_settings(), run_id(context), folders=folders)
            if not report.changed:
                raise AirflowSkipException(f"no new file in {', '.join(folders)}")
            return report.by_dataset()

        ingest()

    return ingest_family()


for _family, _folders in FAMILIES.items():
    ingestion_dag(_family, _folders)

MARTS_DOC = """
### Build and publish the marts

Runs when any ingestion DAG updated its Asset (or by hand):

1. **vee** — validates, estimates and edits the readings of every period that new files touched, then
   checks the validated layer. Returns the periods it rebuilt.
2. **aggregates** — rebuilds the monthly mart parts of the periods new files touched and of those `vee`
   hands it through XCom (a late correction to March rebuilds March; YTD figures follow at publish), and
   the operations marts' figures whole when operations files arrived.
3. **publish** — builds a new marts file, runs the marts' expectations on it and swaps it in with
   `os.replace`. A critical failure leaves the published marts as they were. Skipped, with no
   `meterflow_marts` Asset event, when the published marts are current. Runs in the one-slot pool
   `meterflow_duckdb`.

Every task works from the lake's watermarks, so a retry or a re-run redoes exactly what is left to do;
VEE also records the periods of each run, so aggregates that never ran after a VEE run catch up.
"""


@dag(
    dag_id="meterflow_marts",
    schedule=RAW_ASSETS["reference"]
    | RAW_ASSETS["readings"]
    | RAW_ASSETS["billing"]
    | RAW_ASSETS["operations"],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["meterflow", "marts"],
    doc_md=MARTS_DOC,
)
def meterflow_marts() -> None:
    @task
    def vee(**context: Any) -> list[str]:
        """VEE over the readings above the validated layer's watermark; returns the periods rebuilt."""
        from etl.pipeline import stage_vee
        from etl.settings import get_settings

        return list(stage_vee(get_settings(), run_id(context)).periods_rebuilt)

    @task
    def aggregates(vee_periods: list[str], **context: Any) -> list[str]:
        """Rebuild the monthly aggregates of the touched periods and of `vee_periods`; returns them."""
        from etl.pipeline import stage_marts
        from etl.settings import get_settings

        return list(stage_marts(get_settings(), run_id(context), vee_periods).periods_rebuilt)

    @task(pool=DUCKDB_POOL, outlets=[MARTS_ASSET])
    def publish(**context: Any) -> str:
        """Build, check and swap in the marts file; returns its path. Skipped (no Asset event) when the
        published marts are current."""
        from etl.pipeline import stage_publish
        from etl.settings import get_settings

        path = stage_publish(get_settings(), run_id(context))
        if path is None:
            raise AirflowSkipException("the published marts are current")
        return str(path)

    aggregates(vee()) >> publish()


meterflow_marts()
