"""meterflow's DAGs: one ingestion DAG per source family, and the marts DAG scheduled on their Assets.

One company (METERFLOW_HOME) by default. With METERFLOW_COMPANIES naming a companies file (etl/companies.py)
the same DAGs are generated for every company it lists, their ids and Assets carrying the company's code
(`meterflow_pcqt_ingest_readings`, `meterflow_pcqt_marts`), and `meterflow_corporation` publishes the
corporation's roll-up whenever a company published new marts. A new company is a line in that file.

Thin by design: each task calls one stage function of etl.pipeline, which the `meterflow run` command
calls too. Heavy libraries are imported inside the tasks, never at parse time. A task with an Asset outlet
skips itself (AirflowSkipException) when it has nothing to announce: Airflow emits a task's asset events
only when it succeeds, so the marts DAG wakes only when new files landed, and the marts Asset moves only
when new marts were published.
"""

from __future__ import annotations

import operator
import os
import tomllib
from datetime import timedelta
from functools import reduce
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowSkipException

START = pendulum.datetime(2024, 1, 1, tz="Asia/Ho_Chi_Minh")

# The DuckDB writer of the marts file runs alone: a pool of one slot (created by `make airflow`; per company,
# by `make cluster`).
DUCKDB_POOL = "meterflow_duckdb"
FAMILY_NAMES = ("reference", "readings", "billing", "operations")


def prefix(company: str | None) -> str:
    """`meterflow_` for the one company of METERFLOW_HOME, `meterflow_<code>_` for a listed company."""
    return f"meterflow_{company.lower()}_" if company else "meterflow_"


def raw_assets(company: str | None) -> dict[str, Asset]:
    """One Asset per source family: an ingestion DAG updates it when it ingested (or rejected) new files."""
    lake = f"meterflow://{company.lower()}/lake" if company else "meterflow://lake"
    return {f: Asset(name=f"{prefix(company)}raw_{f}", uri=f"{lake}/raw/{f}") for f in FAMILY_NAMES}


def marts_asset(company: str | None) -> Asset:
    warehouse = f"meterflow://{company.lower()}/warehouse" if company else "meterflow://warehouse"
    return Asset(name=f"{prefix(company)}marts", uri=f"{warehouse}/marts.duckdb")


def duckdb_pool(company: str | None) -> str:
    return f"{DUCKDB_POOL}_{company.lower()}" if company else DUCKDB_POOL


RAW_ASSETS = raw_assets(None)
MARTS_ASSET = marts_asset(None)
CORPORATION_ASSET = Asset(name="meterflow_corporation_marts", uri="meterflow://corporation/marts.duckdb")


def listed_companies() -> list[str]:
    """The codes in the companies file named by METERFLOW_COMPANIES, or [] when it is unset. The file is
    checked in full (etl.companies) by every task; here only the codes are read, at parse time."""
    path = os.environ.get("METERFLOW_COMPANIES")
    if not path:
        return []
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return [str(entry["code"]) for entry in data.get("company", [])]


def task_settings(company: str | None) -> Any:
    """The settings a task works with: METERFLOW_HOME's, or the listed company's (its home and time
    zone also go into this task process's environment, for what reads them from there)."""
    if company is None:
        from etl.settings import get_settings

        return get_settings()
    from etl.companies import load_corporation

    listed = load_corporation().company(company)
    os.environ.update(listed.environment())
    return listed.settings()


DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 2,
    # METERFLOW_RETRY_DELAY_S: the first retry's delay (default 120 s; the cluster test shortens it)
    "retry_delay": timedelta(seconds=float(os.environ.get("METERFLOW_RETRY_DELAY_S", "120"))),
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


def ingestion_dag(family: str, folders: tuple[str, ...], company: str | None = None) -> Any:
    """One ingestion DAG for a source family (of `company`, when given)."""

    @dag(
        dag_id=f"{prefix(company)}ingest_{family}",
        schedule="@hourly",
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["meterflow", "ingestion", family, *([company] if company else [])],
        doc_md=INGEST_DOC.format(family=family, folders="{" + ",".join(folders) + "}/"),
    )
    def ingest_family() -> None:
        @task(outlets=[raw_assets(company)[family]])
        def ingest(**context: Any) -> list[dict[str, Any]]:
            """Ingest new files of this family and return the per-dataset accounting; skipped (no Asset
            event) when no file was new."""
            from etl.pipeline import stage_ingest

            report = stage_ingest(task_settings(company), run_id(context), folders=folders)
            if not report.changed:
                raise AirflowSkipException(f"no new file in {', '.join(folders)}")
            return report.by_dataset()

        ingest()

    return ingest_family()


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


def marts_dag(company: str | None = None) -> Any:
    """The marts DAG (of `company`, when given), scheduled on its ingestion DAGs' Assets."""
    raw = raw_assets(company)

    @dag(
        dag_id=f"{prefix(company)}marts",
        schedule=raw["reference"] | raw["readings"] | raw["billing"] | raw["operations"],
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["meterflow", "marts", *([company] if company else [])],
        doc_md=MARTS_DOC,
    )
    def meterflow_marts() -> None:
        @task
        def vee(**context: Any) -> list[str]:
            """VEE over the readings above the validated layer's watermark; returns the periods rebuilt."""
            from etl.pipeline import stage_vee

            return list(stage_vee(task_settings(company), run_id(context)).periods_rebuilt)

        @task
        def aggregates(vee_periods: list[str], **context: Any) -> list[str]:
            """Rebuild the monthly aggregates of the touched periods and of `vee_periods`; returns them."""
            from etl.pipeline import stage_marts

            return list(stage_marts(task_settings(company), run_id(context), vee_periods).periods_rebuilt)

        @task(pool=duckdb_pool(company), outlets=[marts_asset(company)])
        def publish(**context: Any) -> str:
            """Build, check and swap in the marts file; returns its path. Skipped (no Asset event) when the
            published marts are current."""
            from etl.pipeline import stage_publish

            path = stage_publish(task_settings(company), run_id(context))
            if path is None:
                raise AirflowSkipException("the published marts are current")
            return str(path)

        aggregates(vee()) >> publish()

    return meterflow_marts()


CORPORATION_DOC = """
### Publish the corporation's roll-up

Runs when any company's marts DAG published new marts (or by hand): builds the corporation's marts file
from every company's published marts (each mart's rows with `company_code`, and the corporation's own KPI
rows: sums first, then ratios) and swaps it in atomically under the corporation's publish lock
(etl/corporation.py). Skipped while a company has published no marts yet; a failure leaves the published
roll-up as it was.
"""


def corporation_dag(companies: list[str]) -> Any:
    """The corporation's roll-up DAG, scheduled on every listed company's marts Asset."""
    schedule = reduce(operator.or_, (marts_asset(code) for code in companies))

    @dag(
        dag_id="meterflow_corporation",
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["meterflow", "marts", "corporation"],
        doc_md=CORPORATION_DOC,
    )
    def meterflow_corporation() -> None:
        @task(outlets=[CORPORATION_ASSET])
        def rollup(**context: Any) -> str:
            """Build and swap in the corporation's marts file; returns its path. Skipped (no Asset event)
            while a company has not published marts yet."""
            from etl.companies import load_corporation
            from etl.corporation import company_marts, publish_corporation

            corporation = load_corporation()
            waiting = [c.code for c in corporation.companies if not company_marts(c).is_file()]
            if waiting:
                raise AirflowSkipException(f"no published marts yet from {', '.join(waiting)}")
            return str(publish_corporation(corporation, run_id(context)))

        rollup()

    return meterflow_corporation()


COMPANIES = listed_companies()
for _company in COMPANIES or [None]:
    for _family, _folders in FAMILIES.items():
        ingestion_dag(_family, _folders, _company)
    marts_dag(_company)
if COMPANIES:
    corporation_dag(COMPANIES)
