"""Run the real Airflow DAGs on this machine with `dag.test()`: no scheduler, a SQLite metadata DB.

Used by `meterflow demo` and by the tests that compare the DAG path with `meterflow run`. Airflow reads its
configuration when first imported, so the DAGs run in a child process with the environment set here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from etl.errors import MeterflowError
from etl.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
DAG_ORDER = (
    "meterflow_ingest_reference",
    "meterflow_ingest_readings",
    "meterflow_ingest_billing",
    "meterflow_ingest_operations",
    "meterflow_marts",
)


RESULT_MARK = "meterflow-dag-result: "  # Airflow's and GX's loggers also write to stdout


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment that points Airflow at this project's DAGs and a metadata DB in the data home."""
    home = settings.home / "airflow"
    env = dict(os.environ)
    env.update(
        {
            "METERFLOW_HOME": str(settings.home),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "GX_ANALYTICS_ENABLED": "False",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def run_dags(settings: Settings, dag_ids: tuple[str, ...] = DAG_ORDER) -> list[tuple[str, str, float]]:
    """Run the DAGs one after another with dag.test(); returns (dag_id, state, seconds) for each.

    Raises MeterflowError naming the DAG and the log file when a DAG run does not succeed.
    """
    env = airflow_env(settings)
    log_path = settings.home / "airflow" / "dag_test.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, stdout=log, stderr=log, check=True
        )
        proc = subprocess.run(
            [sys.executable, "-m", "etl.devtools.airflow_local", *dag_ids],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=REPO,
        )
    results = [
        tuple(json.loads(line.removeprefix(RESULT_MARK)))
        for line in proc.stdout.splitlines()
        if line.startswith(RESULT_MARK)
    ]
    failed = [r for r in results if r[1] != "success"]
    if proc.returncode != 0 or failed or len(results) != len(dag_ids):
        raise MeterflowError(f"Airflow DAG run failed ({failed or 'see log'}); details in {log_path}")
    return results  # type: ignore[return-value]


def _main(dag_ids: list[str]) -> int:
    """In the child process: load the DAG folder once and dag.test() each DAG in order."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS_FOLDER))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    out = sys.stdout
    sys.stdout = sys.stderr  # keep Airflow's chatter out of the results channel
    for dag_id in dag_ids:
        start = time.perf_counter()
        run = bag.dags[dag_id].test()
        result = json.dumps([dag_id, str(run.state), time.perf_counter() - start])
        print(f"{RESULT_MARK}{result}", file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
