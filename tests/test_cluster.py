"""meterflow on the Airflow cluster (`make cluster`): Postgres, Redis, SeaweedFS, the API server, scheduler,
DAG processor and two Celery workers on loopback, running three small generated companies whose data homes
are in the cluster's S3 store (`s3://meterflow/<code>`, etl/objectstore.py).

Every company's published marts (read from S3) must equal a local `meterflow run` of the same landing
files, the corporation's roll-up must hold their rows and its own sums, the work must have spread over both
workers, and the single-writer locks must hold through Postgres (METERFLOW_LOCK_URL).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.companies import load_corporation
from etl.devtools.cluster import BUCKET, airflow_db, wait_until_settled
from etl.errors import LockError
from etl.lock import data_home_lock
from etl.settings import Settings
from tests.conftest import published_tables

ROOT = Path(__file__).resolve().parent.parent
COMPANIES = (("PCA", 5, "Asia/Ho_Chi_Minh"), ("PCB", 6, "Asia/Bangkok"), ("PCC", 7, "Asia/Ho_Chi_Minh"))
SETTLE_TIMEOUT_S = 900
# PCB's February readings arrive after the first close: the fault test delivers them and kills the worker
# running PCB's VEE task.
HELD_BACK_COMPANY = "PCB"
HELD_BACK_FILES = "readings/interval_reads_202502*"

# minutes of Airflow scheduling: `make test` runs this file on one of its two processes while the other
# runs the rest; alone: `make test-cluster`
pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def free_api_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base() -> object:
    folder = Path(tempfile.mkdtemp(prefix="meterflow-cluster-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def references(base: Path) -> dict[str, Settings]:
    """Each company generated and published by a local `meterflow run`: what the cluster must give."""
    from etl.generate import generate
    from etl.pipeline import run

    homes = {}
    for code, seed, _zone in COMPANIES:
        home = base / "reference" / code.lower()
        generate(home, customers=30, start="2024-11", end="2025-02", seed=seed, fault_rate=0.02)
        settings = Settings(home=home, threads=2, memory_limit="2GB")
        assert run(settings, run_id=f"test__{code}").published == settings.marts_path
        homes[code] = settings
    return homes


def s3_home(code: str) -> str:
    return f"s3://{BUCKET}/{code.lower()}"


def upload(cluster, source: Path, uri: str) -> None:  # noqa: ANN001
    """Put every file under `source` into `uri` (relative paths kept), as an upstream system would."""
    store = cluster.s3_filesystem()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        with store.open_output_stream(
            f"{uri.removeprefix('s3://')}/{path.relative_to(source).as_posix()}"
        ) as out:
            out.write(path.read_bytes())


def store_marts(cluster, code: str, dest: Path) -> Path:  # noqa: ANN001
    """A company's published marts file, downloaded from its S3 home."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with cluster.s3_filesystem().open_input_stream(
        f"{s3_home(code).removeprefix('s3://')}/warehouse/marts.duckdb"
    ) as src:
        dest.write_bytes(src.read())
    return dest


@pytest.fixture(scope="module")
def cluster(base: Path, references: dict[str, Settings]):  # noqa: ANN201 - etl.devtools.cluster.Cluster
    """The cluster, started with the three companies on S3 homes (their landing files uploaded from the
    references before Airflow starts) and the DAGs unpaused; stopped, with its Postgres folder removed, at
    the end."""
    from etl.devtools.cluster import start, stop

    lines = ['[corporation]\ncode = "NPC"\nhome = "npc"\n']
    for code, _seed, zone in COMPANIES:
        landing = base / "upload" / code.lower() / "landing"
        shutil.copytree(references[code].landing, landing)
        if code == HELD_BACK_COMPANY:  # delivered later, by the fault test
            for path in landing.glob(HELD_BACK_FILES):
                path.unlink()
        lines.append(f'[[company]]\ncode = "{code}"\nhome = "{s3_home(code)}"\ntimezone = "{zone}"\n')
    companies = base / "cluster" / "companies.toml"
    companies.parent.mkdir(parents=True)
    companies.write_text("\n".join(lines), encoding="utf-8")
    home = Settings(home=base / "cluster")

    def land(started) -> None:  # noqa: ANN001
        for code, _seed, _zone in COMPANIES:
            upload(started, base / "upload" / code.lower() / "landing", f"{s3_home(code)}/landing")

    os.environ["METERFLOW_RETRY_DELAY_S"] = "5"  # the DAGs' retry delay, read when the DAGs are parsed
    try:
        started = start(
            home, api_port=free_api_port(), companies=companies, unpause=True, before_airflow=land
        )
    finally:
        del os.environ["METERFLOW_RETRY_DELAY_S"]
    try:
        yield started
    finally:
        stop(home)
        if started.pg_dir and started.pg_dir.exists():
            shutil.rmtree(started.pg_dir)


@pytest.fixture(scope="module")
def finished(cluster):  # noqa: ANN001, ANN201
    """The cluster once all its DAG runs are done."""
    wait_until_settled(cluster, SETTLE_TIMEOUT_S)
    return cluster


def test_every_company_publishes_the_marts_of_a_local_run(finished, references, tmp_path) -> None:  # noqa: ANN001
    corp = load_corporation(finished.companies)
    assert [c.home for c in corp.companies] == [s3_home(code) for code, _seed, _zone in COMPANIES]
    con = airflow_db(finished)
    with con.cursor() as cur:
        cur.execute("select dag_id, state from dag_run where state <> 'success'")
        assert cur.fetchall() == []
    con.close()
    for company in corp.companies:
        if company.code != HELD_BACK_COMPANY:
            marts = store_marts(finished, company.code, tmp_path / f"{company.slug}.duckdb")
            assert published_tables(marts) == published_tables(references[company.code].marts_path), (
                company.code
            )


def running_vee_pid(cluster, dag_id: str) -> int | None:  # noqa: ANN001
    """The pid of the task process running `dag_id`'s vee task, once it runs."""
    con = airflow_db(cluster)
    try:
        with con.cursor() as cur:
            cur.execute(
                "select pid from task_instance where dag_id = %s and task_id = 'vee' and state = 'running'"
                " and pid is not null",
                (dag_id,),
            )
            row = cur.fetchone()
    finally:
        con.close()
    return int(row[0]) if row else None


def parent_pid(pid: int) -> int:
    """The parent of a process, from /proc (1 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 1
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_a_worker_killed_in_vee_leaves_the_task_to_the_other(finished, references, tmp_path) -> None:  # noqa: ANN001
    """Deliver PCB's held-back readings, SIGKILL the worker running PCB's VEE task: the task fails over to
    the other worker and PCB's marts equal a clean local run of all its files."""
    company = load_corporation(finished.companies).company(HELD_BACK_COMPANY)
    held_back = tmp_path / "held-back"
    for source in references[HELD_BACK_COMPANY].landing.glob(HELD_BACK_FILES):
        target = held_back / source.relative_to(references[HELD_BACK_COMPANY].landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    upload(finished, held_back, f"{s3_home(company.code)}/landing")
    dag_id = f"meterflow_{company.slug}_marts"
    triggered = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "trigger", f"meterflow_{company.slug}_ingest_readings"],
        env=finished.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert triggered.returncode == 0, triggered.stderr[-2000:]
    deadline = time.monotonic() + 600
    pid = None
    while pid is None:
        assert time.monotonic() < deadline, "PCB's vee task never ran"
        pid = running_vee_pid(finished, dag_id)
        time.sleep(0.2)
    # the task process runs in a process group of its own under its worker's pool process: the machine
    # "dies" when both the worker's group and the task's go
    workers = {leader: name for name, leader in finished.pids.items() if name.startswith("worker")}
    ancestor, killed = pid, []
    while ancestor > 1 and not killed:
        ancestor = parent_pid(ancestor)
        killed = [workers[ancestor]] if ancestor in workers else []
    assert killed, (pid, finished.pids)
    os.killpg(finished.pids[killed[0]], signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)
    wait_until_settled(finished, SETTLE_TIMEOUT_S, allow_stopped=set(killed))
    con = airflow_db(finished)
    with con.cursor() as cur:
        cur.execute(
            "select state, try_number from task_instance where dag_id = %s and task_id = 'vee'"
            " order by start_date desc limit 1",
            (dag_id,),
        )
        assert cur.fetchone() == ("success", 2)  # the killed try failed; the second, elsewhere, succeeded
    con.close()
    survivor = "worker2" if killed[0] == "worker1" else "worker1"
    assert finished.alive()[survivor] and not finished.alive()[killed[0]]
    marts = store_marts(finished, company.code, tmp_path / "marts.duckdb")
    assert published_tables(marts) == published_tables(references[HELD_BACK_COMPANY].marts_path)


def test_the_corporation_rows_are_the_sums(finished, tmp_path) -> None:  # noqa: ANN001
    corp = load_corporation(finished.companies)
    sums: dict[str, list[Decimal]] = {}
    for company in corp.companies:
        marts = store_marts(finished, company.code, tmp_path / f"{company.slug}.duckdb")
        con = duckdb.connect(str(marts), read_only=True)
        for period, kwh, revenue in con.execute(
            "select period, kwh_sold, revenue_vnd from mart_kpi_monthly where region_code = 'ALL'"
        ).fetchall():
            total = sums.setdefault(period, [Decimal(0), Decimal(0)])
            total[0] += kwh
            total[1] += revenue
        con.close()
    con = duckdb.connect(str(corp.settings().marts_path), read_only=True)
    rows = con.execute(
        "select period, kwh_sold, revenue_vnd from mart_kpi_monthly "
        "where company_code = 'NPC' order by period"
    ).fetchall()
    codes = con.execute("select distinct company_code from mart_sales_monthly order by 1").fetchall()
    con.close()
    assert rows == [(period, kwh, revenue) for period, (kwh, revenue) in sorted(sums.items())]
    assert codes == [("PCA",), ("PCB",), ("PCC",)]


def test_the_work_spread_over_both_workers(finished) -> None:  # noqa: ANN001
    done = {}
    for number in (1, 2):
        log = (finished.root / "logs" / f"worker{number}.log").read_text(encoding="utf-8", errors="replace")
        done[number] = log.count("Workload finished")  # the worker's supervisor, for each task it ran
    assert done[1] > 0 and done[2] > 0, done


def test_the_postgres_lock_names_its_holder(
    finished, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # noqa: ANN001
    monkeypatch.setenv("METERFLOW_LOCK_URL", finished.lock_url)
    settings = Settings(home=tmp_path / "home")
    with data_home_lock(settings, "publish"):
        with pytest.raises(LockError) as info:
            with data_home_lock(settings, "publish", wait=0.5):
                pytest.fail("two holders at once")
        assert f"pid {os.getpid()} on " in str(info.value)
        assert "holds the publish lock (Postgres advisory lock of" in str(info.value)
        with data_home_lock(settings, "ingest"):  # another name: no conflict
            pass
        with data_home_lock(Settings(home=tmp_path / "other"), "publish"):  # another home: no conflict
            pass
    released = threading.Event()

    def hold_then_release() -> None:
        with data_home_lock(settings, "vee"):
            time.sleep(1.0)
        released.set()

    holder = threading.Thread(target=hold_then_release)
    holder.start()
    time.sleep(0.3)
    with data_home_lock(settings, "vee", wait=30):  # waits for the holder, then takes it
        assert released.is_set()
    holder.join()


def test_a_second_run_of_the_same_company_stops_naming_the_holder(
    finished, references, tmp_path: Path
) -> None:  # noqa: ANN001
    home = tmp_path / "pca"
    shutil.copytree(references["PCA"].landing, home / "landing")
    env = dict(
        os.environ, METERFLOW_LOCK_URL=finished.lock_url, METERFLOW_HOME=str(home), METERFLOW_THREADS="1"
    )
    command = [str(Path(sys.executable).parent / "meterflow"), "run"]
    first = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        con = airflow_db(finished)
        deadline = time.monotonic() + 60
        holding = False
        while not holding:  # the first run's lock session names it: start the second once it is there
            assert time.monotonic() < deadline and first.poll() is None, "the first run never took its lock"
            with con.cursor() as cur:
                cur.execute(
                    "select count(*) from pg_locks l join pg_stat_activity a on a.pid = l.pid "
                    "where l.locktype = 'advisory' and l.granted and a.application_name like %s",
                    (f"meterflow pid {first.pid}@%",),
                )
                holding = cur.fetchone()[0] > 0
            time.sleep(0.1)
        con.close()
        second = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        said = " ".join((second.stderr + second.stdout).split())  # the console wraps long lines
        assert second.returncode != 0, said
        assert f"holds the run lock (Postgres advisory lock of {home}) since" in said
        assert f"pid {first.pid} on " in said
    finally:
        out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    assert published_tables(home / "warehouse" / "marts.duckdb") == published_tables(
        references["PCA"].marts_path
    )


def listening_addresses() -> dict[int, set[str]]:
    """Every listening TCP socket of the machine: port -> local addresses, from /proc/net/tcp{,6}."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A":  # LISTEN
                found.setdefault(int(port, 16), set()).add(address)
    return found


def test_every_port_is_on_loopback_and_every_secret_private(finished) -> None:  # noqa: ANN001
    from etl.devtools.airflow_standalone import password_file

    listening = listening_addresses()
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    for name, port in finished.ports.items():
        assert listening.get(port) in (None, {loopback}), (name, port, listening.get(port))
    assert listening[finished.ports["api"]] == {loopback}
    assert listening[finished.ports["postgres"]] == {loopback}
    assert listening[finished.ports["redis"]] == {loopback}
    assert listening[finished.ports["s3"]] == {loopback}
    for secret in (
        finished.secrets_file,
        finished.state_file,
        finished.root / "redis" / "redis.conf",
        finished.root / "seaweedfs" / "s3-identities.json",
        password_file(finished.airflow_settings),
    ):
        assert secret.stat().st_mode & 0o077 == 0, secret


def test_stop_ends_every_process_it_started(finished) -> None:  # noqa: ANN001
    from etl.devtools.airflow_standalone import group_alive
    from etl.devtools.cluster import stop

    started = dict(finished.pids)
    assert set(started) >= {"postgres", "redis", "seaweedfs", "api-server", "scheduler", "dag-processor"}
    stopped = stop(finished.settings)
    assert set(stopped) == set(started)
    finished.alive()  # reaps what this process started
    assert [name for name, pid in started.items() if group_alive(pid)] == []
