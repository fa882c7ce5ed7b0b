"""`make cluster` / `make cluster-stop`: meterflow on an Airflow cluster, each part on 127.0.0.1 with a login.

    Postgres (Debian's postgresql)   Airflow's metadata database, Celery's results, meterflow's locks
    Redis (Debian's redis-server)    Celery's broker
    SeaweedFS (`weed server -s3`)    an S3 object store, bucket `meterflow`
    Airflow                          API server, scheduler, DAG processor and two Celery workers

Everything the cluster keeps is under `<data home>/cluster/`: `secrets.json` (owner-only: the Postgres,
Redis and S3 passwords), `state.json` (the ports, and the process ids that `stop` signals), `logs/`, the
Airflow home `airflow/` (the `admin` password in `simple_auth_manager_passwords.json.generated`, owner-only),
Redis's and SeaweedFS's folders. Postgres refuses to run as root: run as root, its data folder is a private
folder of the `postgres` user under /tmp, recorded in state.json. `start` reuses what an earlier start left
(database, secrets) and `stop` keeps it; each process runs in a session of its own, and `stop` sends each
group TERM (Postgres: INT, a fast shutdown), then KILL after a grace period.

The tasks find the companies in METERFLOW_COMPANIES (`--companies`) and take their single-writer locks in
Postgres (METERFLOW_LOCK_URL), so that the rules hold whichever worker, on whichever host, runs a task. A
company's home may be in the cluster's object store, `s3://meterflow/<prefix>` (etl/objectstore.py): the
tasks get its endpoint and login (METERFLOW_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and keep
their working copies in `<cluster>/work` (METERFLOW_WORK_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.devtools.airflow_standalone import (
    HOST,
    group_alive,
    password_file,
    port_in_use,
    prepare,
    standalone_env,
)
from etl.errors import MeterflowError
from etl.settings import Settings, get_settings

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
PG_USER = "meterflow"
BUCKET = "meterflow"
WORKERS = 2
READY_TIMEOUT_S = 300
STOP_GRACE_S = 30
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor")
CELERY_EXECUTOR = "airflow.providers.celery.executors.celery_executor.CeleryExecutor"
HEALTHY = ("metadatabase", "scheduler", "dag_processor")


def cluster_dir(settings: Settings) -> Path:
    return settings.home / "cluster"


def free_port(avoid: set[int], grpc: bool = False) -> int:
    """A free loopback port not in `avoid`; with `grpc`, its +10000 (SeaweedFS's gRPC port) free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port in avoid or (grpc and (port + 10000 > 65535 or port_in_use(port + 10000))):
            continue
        avoid.add(port)
        if grpc:
            avoid.add(port + 10000)
        return port
    raise MeterflowError("found no free loopback port")


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created so, never readable by others even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


@dataclass
class Cluster:
    """The cluster of one data home: where its files are, its ports and secrets."""

    settings: Settings
    api_port: int = 8080
    companies: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    pg_dir: Path | None = None

    @property
    def root(self) -> Path:
        return cluster_dir(self.settings)

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def airflow_settings(self) -> Settings:
        """Settings whose home is the cluster folder: Airflow's home is then `<cluster>/airflow`."""
        return Settings(home=self.root)

    # --- URLs -------------------------------------------------------------------------------------------

    def pg_url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{PG_USER}:{self.secret['postgres']}@{HOST}:{self.ports['postgres']}/{database}"

    @property
    def lock_url(self) -> str:
        return self.pg_url("meterflow")

    @property
    def broker_url(self) -> str:
        return f"redis://:{self.secret['redis']}@{HOST}:{self.ports['redis']}/0"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    def s3_server(self) -> SeaweedS3:
        """The cluster's S3 server (its folder `<cluster>/seaweedfs`, its log in logs/seaweedfs.log)."""
        return SeaweedS3(
            self.root / "seaweedfs",
            self.secret["s3_access_key"],
            self.secret["s3_secret_key"],
            {name: self.ports[name] for name in (*SeaweedS3.PORTS, "s3_grpc")},
            log_path=self.root / "logs" / "seaweedfs.log",
            pid=self.pids.get("seaweedfs"),
        )

    def s3_filesystem(self) -> Any:
        """A pyarrow S3 file system on the cluster's object store."""
        return self.s3_server().filesystem()

    # --- state ------------------------------------------------------------------------------------------

    def load(self) -> bool:
        """Read secrets and state an earlier start left; False when there are none."""
        if self.secrets_file.exists():
            self.secret = json.loads(self.secrets_file.read_text(encoding="utf-8"))
        if not self.state_file.exists():
            return False
        state = json.loads(self.state_file.read_text(encoding="utf-8"))
        self.ports = {k: int(v) for k, v in state["ports"].items()}
        self.pids = {k: int(v) for k, v in state.get("pids", {}).items()}
        self.pg_dir = Path(state["pg_dir"]) if state.get("pg_dir") else None
        self.companies = Path(state["companies"]) if state.get("companies") else None
        return True

    def save(self) -> None:
        state = {
            "ports": self.ports,
            "pids": self.pids,
            "pg_dir": str(self.pg_dir) if self.pg_dir else None,
            "companies": str(self.companies) if self.companies else None,
        }
        write_private(self.state_file, json.dumps(state, indent=2) + "\n")

    def ensure_secrets(self) -> None:
        if not self.secret:
            self.secret = {
                "postgres": secrets.token_urlsafe(18),
                "redis": secrets.token_urlsafe(18),
                "s3_access_key": secrets.token_hex(8),
                "s3_secret_key": secrets.token_urlsafe(24),
                "jwt": secrets.token_urlsafe(32),
                "api": secrets.token_urlsafe(32),
            }
            write_private(self.secrets_file, json.dumps(self.secret, indent=2) + "\n")

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process of the cluster and of the tasks they run."""
        env = standalone_env(self.airflow_settings, self.api_port)
        env.update(
            {
                "METERFLOW_HOME": str(self.settings.home),
                "METERFLOW_LOCK_URL": self.lock_url,
                "METERFLOW_THREADS": "1",
                "METERFLOW_MEMORY_LIMIT": "1GB",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.pg_url("airflow", "postgresql+psycopg2"),
                "AIRFLOW__CORE__EXECUTOR": CELERY_EXECUTOR,
                "AIRFLOW__CORE__PARALLELISM": str(2 * WORKERS),
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": self.pg_url("airflow", "db+postgresql+psycopg2"),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
                # a task's calls to the API server wait longer than the default 5 s on a busy machine
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
                # a task whose worker died is failed (and retried on another) after a minute, not five
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "10",
                "AIRFLOW__API_AUTH__JWT_SECRET": self.secret["jwt"],
                "AIRFLOW__API__SECRET_KEY": self.secret["api"],
                # S3 homes (s3://meterflow/<company>): the store, its login, the tasks' working copies
                **self.s3_server().environment(),
                "METERFLOW_WORK_DIR": str(self.root / "work"),
            }
        )
        if self.companies:
            env["METERFLOW_COMPANIES"] = str(self.companies)
        return env

    # --- processes --------------------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None, **kw: Any) -> None:
        """Start a process in a session of its own, its output in logs/<name>.log."""
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kw,
            )
        self.pids[name] = proc.pid
        self.save()

    def alive(self) -> dict[str, bool]:
        """Which processes still run (reaping those this process started and that ended)."""
        for pid in self.pids.values():
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        return {name: group_alive(pid) for name, pid in self.pids.items()}


def _pg_tool(name: str) -> str:
    if not PG_BIN:
        raise MeterflowError("Postgres is not installed: apt-get install postgresql")
    return str(PG_BIN[-1] / name)


def _as_postgres_user() -> dict[str, Any]:
    """Popen arguments that run a Postgres program as the `postgres` user when this process is root."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def start_postgres(cluster: Cluster) -> None:
    """Initialise (first time) and start Postgres on loopback with password logins; create the databases."""
    fresh = cluster.pg_dir is None or not (cluster.pg_dir / "data" / "PG_VERSION").exists()
    if fresh:
        if os.geteuid() == 0:  # Postgres will not run as root: a folder of the postgres user
            cluster.pg_dir = Path(tempfile.mkdtemp(prefix="meterflow-postgres-"))
            shutil.chown(cluster.pg_dir, "postgres", "postgres")
        else:
            cluster.pg_dir = cluster.root / "postgres"
            cluster.pg_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(cluster.pg_dir, 0o700)
        pwfile = cluster.pg_dir / "pw"
        write_private(pwfile, cluster.secret["postgres"] + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        done = subprocess.run(
            [
                _pg_tool("initdb"),
                "-D",
                str(cluster.pg_dir / "data"),
                "-U",
                PG_USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            check=False,
            **_as_postgres_user(),
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise MeterflowError(f"initdb failed: {done.stderr.strip()[-2000:]}")
    assert cluster.pg_dir is not None
    cluster.spawn(
        "postgres",
        [
            _pg_tool("postgres"),
            "-D",
            str(cluster.pg_dir / "data"),
            "-h",
            HOST,
            "-p",
            str(cluster.ports["postgres"]),
            "-k",
            str(cluster.pg_dir),
            "-c",
            "max_connections=200",
        ],
        **_as_postgres_user(),
    )
    import psycopg2

    deadline = time.monotonic() + 60
    while True:
        try:
            con = psycopg2.connect(cluster.pg_url("postgres"), connect_timeout=3)
            break
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline or not group_alive(cluster.pids["postgres"]):
                raise MeterflowError(
                    f"Postgres did not start (see {cluster.root}/logs/postgres.log): {exc}"
                ) from None
            time.sleep(0.5)
    con.autocommit = True
    with con.cursor() as cur:
        for database in ("airflow", "meterflow"):
            cur.execute("select 1 from pg_database where datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f"create database {database}")
    con.close()


def start_redis(cluster: Cluster) -> None:
    folder = cluster.root / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "redis.conf"
    write_private(
        conf,
        f"bind {HOST}\nport {cluster.ports['redis']}\nprotected-mode yes\n"
        f"requirepass {cluster.secret['redis']}\n"
        f'dir {folder}\nsave ""\nappendonly no\ndaemonize no\n',
    )
    redis_server = shutil.which("redis-server")
    if not redis_server:
        raise MeterflowError("Redis is not installed: apt-get install redis-server")
    cluster.spawn("redis", [redis_server, str(conf)])
    wait_for_port(cluster, "redis", 30)


@dataclass
class SeaweedS3:
    """A SeaweedFS server (`weed server -s3`) on loopback with one login, its data in `folder`: the S3
    object store of the cluster, and of the tests (tests/test_s3.py). `start` again on the same folder
    after `kill` is a restarted server that keeps its objects."""

    folder: Path
    access_key: str
    secret_key: str
    ports: dict[str, int]  # weed_master, weed_volume, weed_filer, s3 (each with +10000 free), s3_grpc
    log_path: Path | None = None
    pid: int | None = None

    PORTS = ("weed_master", "weed_volume", "weed_filer", "s3")

    @classmethod
    def pick_ports(cls, taken: set[int]) -> dict[str, int]:
        ports = {name: free_port(taken, grpc=True) for name in cls.PORTS}
        ports["s3_grpc"] = free_port(taken)
        return ports

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    def environment(self) -> dict[str, str]:
        """What a meterflow process needs to reach this store (etl/objectstore.py)."""
        return {
            "METERFLOW_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def filesystem(self) -> Any:
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            endpoint_override=self.endpoint,
            scheme="http",
            allow_bucket_creation=True,
        )

    def argv(self) -> list[str]:
        """The `weed server` command line (its folders made, its login written owner-only)."""
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        identities = self.folder / "s3-identities.json"
        identity = {
            "name": "meterflow",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        write_private(identities, json.dumps({"identities": [identity]}))
        weed = Path(sys.executable).parent / "weed"
        if not weed.exists():
            raise MeterflowError(f"{weed} is missing: `make cluster-env` installs SeaweedFS")
        p = self.ports
        return [
            str(weed),
            "server",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-dir={self.folder / 'data'}",
            f"-master.port={p['weed_master']}",
            f"-volume.port={p['weed_volume']}",
            f"-filer.port={p['weed_filer']}",
            "-master.volumeSizeLimitMB=256",
            "-volume.max=0",  # as many volumes as the disk holds (the default, 8, fills at 2 GB)
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
        ]

    def start(self, bucket: str = "meterflow", timeout: float = 90) -> int:
        """Start the server in a session of its own and wait until `bucket` exists; returns its pid."""
        for port in self.ports.values():  # a killed server's ports are free once it has exited
            deadline = time.monotonic() + 30
            while port_in_use(port) and time.monotonic() < deadline:
                time.sleep(0.2)
        argv = self.argv()  # makes the folder
        self.log_path = self.log_path or self.folder / "weed.log"
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = proc.pid
        self.wait_until_serving(bucket, timeout)
        return proc.pid

    def wait_until_serving(self, bucket: str, timeout: float) -> None:
        from pyarrow import fs

        deadline = time.monotonic() + timeout
        while True:  # the S3 port opens before the filer behind it serves: wait until a bucket can be made
            try:
                store = self.filesystem()
                store.create_dir(bucket)
                if store.get_file_info(bucket).type == fs.FileType.Directory:
                    return
            except OSError as exc:
                if time.monotonic() > deadline or (self.pid is not None and not group_alive(self.pid)):
                    raise MeterflowError(f"SeaweedFS did not serve S3 (see {self.log_path}): {exc}") from None
            time.sleep(1)

    def kill(self) -> None:
        """SIGKILL the server's process group (a crash) and wait until it is gone."""
        if self.pid is not None:
            stop_process(self.pid, signal.SIGKILL, grace=10)
            self.pid = None

    def stop(self) -> None:
        if self.pid is not None:
            stop_process(self.pid)
            self.pid = None


def start_s3(cluster: Cluster) -> None:
    server = cluster.s3_server()
    cluster.spawn("seaweedfs", server.argv())
    server.pid = cluster.pids["seaweedfs"]
    server.wait_until_serving(BUCKET, 90)


def wait_for_port(cluster: Cluster, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_in_use(cluster.ports[name]):
        if time.monotonic() > deadline or not group_alive(cluster.pids[name]):
            raise MeterflowError(f"{name} did not start (see {cluster.root}/logs/{name}.log)")
        time.sleep(0.3)


def airflow_pools(cluster: Cluster) -> Iterator[str]:
    """One single-slot marts writer pool per listed company (dags/meterflow.py)."""
    if cluster.companies:
        from etl.companies import load_corporation

        for company in load_corporation(cluster.companies).companies:
            yield f"meterflow_duckdb_{company.slug}"


def start_airflow(cluster: Cluster, env: dict[str, str]) -> None:
    """Migrate the metadata database, create the pools, start the Airflow processes and two workers."""
    prepare(cluster.airflow_settings, env)  # db migrate and the one-company pool
    for pool in airflow_pools(cluster):
        done = subprocess.run(
            [sys.executable, "-m", "airflow", "pools", "set", pool, "1", "one marts writer per company"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise MeterflowError(f"airflow pools set {pool} failed: {done.stderr.strip()[-2000:]}")
    cwd = cluster.settings.home
    for name in AIRFLOW_PROCESSES:
        cluster.spawn(name, [sys.executable, "-m", "airflow", name], env=env, cwd=cwd)
    for number in range(1, WORKERS + 1):
        start_worker(cluster, env, number)


def start_worker(cluster: Cluster, env: dict[str, str], number: int) -> None:
    """Start Celery worker `number` (its logs are read from the shared Airflow home: no log server)."""
    cluster.spawn(
        f"worker{number}",
        [
            sys.executable,
            "-m",
            "airflow",
            "celery",
            "worker",
            "--celery-hostname",
            f"worker{number}@%h",
            "--concurrency",
            "1",
            "--skip-serve-logs",
        ],
        env=env,
        cwd=cluster.settings.home,
    )


def wait_until_serving(cluster: Cluster, timeout: float = READY_TIMEOUT_S) -> None:
    """Return once the API server reports the database, scheduler and DAG processor healthy. Raises
    MeterflowError when a process stopped or time ran out."""
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        dead = [name for name, up in cluster.alive().items() if not up]
        if dead:
            raise MeterflowError(f"{', '.join(dead)} stopped; see {cluster.root}/logs/")
        try:
            url = f"http://{HOST}:{cluster.api_port}/api/v2/monitor/health"
            with urllib.request.urlopen(url, timeout=5) as answer:
                health = json.loads(answer.read())
            if all((health.get(part) or {}).get("status") == "healthy" for part in HEALTHY):
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(2)
    raise MeterflowError(f"Airflow was not healthy within {timeout:g} s ({health}); see {cluster.root}/logs/")


def airflow_db(cluster: Cluster) -> Any:
    """A connection (autocommit) to the cluster's Airflow metadata database."""
    import psycopg2

    con = psycopg2.connect(cluster.pg_url("airflow"))
    con.autocommit = True
    return con


def published(cluster: Cluster, settings: Settings) -> bool:
    """True when the data home has published marts (an S3 home: in the cluster's object store)."""
    if settings.remote is None:
        return settings.marts_path.exists()
    from pyarrow import fs

    key = f"{settings.remote.removeprefix('s3://')}/warehouse/marts.duckdb"
    return bool(cluster.s3_filesystem().get_file_info(key).type == fs.FileType.File)


def settled(cluster: Cluster) -> bool:
    """True when every listed company and the corporation have published, and no DAG run is queued,
    running or waiting for an Asset event."""
    from etl.companies import load_corporation

    if cluster.companies:
        corp = load_corporation(cluster.companies)
        homes = [c.settings() for c in corp.companies] + [corp.settings()]
        if not all(published(cluster, home) for home in homes):
            return False
    con = airflow_db(cluster)
    try:
        with con.cursor() as cur:
            cur.execute("select count(*) from dag_run where state in ('queued', 'running')")
            active = cur.fetchone()[0]
            cur.execute("select count(*) from asset_dag_run_queue")
            waiting = cur.fetchone()[0]
    finally:
        con.close()
    return bool(active == 0 and waiting == 0)


def wait_until_settled(
    cluster: Cluster, timeout: float, poll: float = 10, allow_stopped: frozenset[str] | set[str] = frozenset()
) -> float:
    """Wait until the cluster is settled twice in a row `poll` seconds apart; returns the seconds waited.
    Raises MeterflowError when a process (other than those in `allow_stopped`) stopped or time ran out."""
    began = time.monotonic()
    calm = 0
    while calm < 2:
        if time.monotonic() - began > timeout:
            raise MeterflowError(
                f"the cluster did not settle within {timeout:g} s; logs in {cluster.root}/logs"
            )
        stopped = [name for name, up in cluster.alive().items() if not up and name not in allow_stopped]
        if stopped:
            raise MeterflowError(f"{', '.join(stopped)} stopped; see {cluster.root}/logs/")
        calm = calm + 1 if settled(cluster) else 0
        if calm < 2:
            time.sleep(poll)
    return time.monotonic() - began


def start(
    settings: Settings,
    api_port: int = 8080,
    companies: Path | None = None,
    unpause: bool = False,
    before_airflow: Callable[[Cluster], None] | None = None,
) -> Cluster:
    """Start the whole cluster; returns it once the API server answers. Raises MeterflowError, having
    stopped what it started, when a part does not start. `before_airflow` is called once Postgres, Redis
    and the S3 store serve and before any DAG can run (e.g. to put landing files into S3 homes)."""
    cluster = Cluster(settings, api_port=api_port)
    if cluster.load() and any(cluster.alive().values()):
        raise MeterflowError(f"a cluster of {settings.home} is running; `make cluster-stop` first")
    cluster.api_port = api_port
    cluster.companies = companies.absolute() if companies else cluster.companies
    if port_in_use(api_port):
        raise MeterflowError(f"{HOST}:{api_port} is already in use; stop what listens there or pass --port")
    cluster.root.mkdir(parents=True, exist_ok=True)
    cluster.ensure_secrets()
    taken = {api_port}
    cluster.ports = {"api": api_port, "postgres": free_port(taken), "redis": free_port(taken)}
    cluster.ports.update(SeaweedS3.pick_ports(taken))
    cluster.pids = {}
    cluster.save()
    env = cluster.env()
    if unpause:
        env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    try:
        start_postgres(cluster)
        start_redis(cluster)
        start_s3(cluster)
        if before_airflow is not None:
            before_airflow(cluster)
        start_airflow(cluster, env)
        wait_until_serving(cluster)
    except BaseException:
        stop(settings)
        raise
    return cluster


def stop_process(pid: int, sig: signal.Signals = signal.SIGTERM, grace: float = STOP_GRACE_S) -> None:
    """Stop a process group: `sig`, then KILL after `grace` seconds."""
    for signum, wait in ((sig, grace), (signal.SIGKILL, 10.0)):
        if not group_alive(pid):
            return
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
            except ChildProcessError:
                pass
            if not group_alive(pid):
                return
            time.sleep(0.3)


def stop(settings: Settings) -> list[str]:
    """Stop every process the cluster's start recorded, Airflow first and Postgres last; returns their
    names. Keeps the databases, secrets and logs."""
    cluster = Cluster(settings)
    if not cluster.load():
        return []
    order = [n for n in cluster.pids if n.startswith("worker")] + [*reversed(AIRFLOW_PROCESSES)]
    order += ["seaweedfs", "redis", "postgres"]
    stopped = []
    for name in order:
        pid = cluster.pids.get(name)
        if pid is None:
            continue
        stop_process(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        stopped.append(name)
    cluster.pids = {}
    cluster.save()
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl.devtools.cluster", description="meterflow's Airflow cluster on 127.0.0.1."
    )
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--home", type=Path, help="data home (overrides METERFLOW_HOME)")
    parser.add_argument("--port", type=int, default=8080, help="the API server's port (default 8080)")
    parser.add_argument(
        "--companies", type=Path, default=os.environ.get("METERFLOW_COMPANIES"), help="companies file"
    )
    parser.add_argument("--unpause", action="store_true", help="create the DAGs unpaused")
    args = parser.parse_args(argv)
    settings = get_settings(args.home)
    try:
        if args.action == "stop":
            stopped = stop(settings)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
            return 0
        cluster = start(settings, args.port, args.companies, args.unpause)
    except MeterflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    p = cluster.ports
    print(
        f"meterflow cluster of {settings.home} is up:\n"
        f"  Airflow  http://{HOST}:{p['api']}  user admin, "
        f"password in {password_file(cluster.airflow_settings)}\n"
        f"  Postgres {HOST}:{p['postgres']}  Redis {HOST}:{p['redis']}  S3 {cluster.s3_endpoint} "
        f"(bucket {BUCKET})\n"
        f"  secrets  {cluster.secrets_file}; logs {cluster.root / 'logs'}\n"
        f"  companies {cluster.companies or 'none: the one company of the data home'}\n"
        "  `make cluster-stop` stops it.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
