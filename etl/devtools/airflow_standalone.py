"""`make airflow`: Airflow 3 standalone for operators, on 127.0.0.1 with meterflow's DAGs and a login.

Airflow's home is `<data home>/airflow` (metadata in SQLite, logs under `logs/`), the DAGs come from the
repository's `dags/`, and the tasks see `METERFLOW_HOME`. The simple auth manager asks for a login: the
user is `admin`, its generated password is in
`<data home>/airflow/simple_auth_manager_passwords.json.generated`.

`airflow standalone` starts the scheduler, DAG processor, triggerer and API server as child processes that
outlive a TERM sent to their parent, so it runs here in a session of its own and Ctrl-C or TERM stops the
whole process group: TERM first, KILL for whatever is still there after a grace period.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from etl.devtools.airflow_local import airflow_env
from etl.errors import MeterflowError
from etl.settings import Settings, get_settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
POOL = "meterflow_duckdb"  # dags/meterflow.py: the marts writer runs alone
POOL_DESCRIPTION = "one writer of the DuckDB marts file at a time"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
READY_TIMEOUT_S = 300
STOP_GRACE_S = 30


def airflow_home(settings: Settings) -> Path:
    return settings.home / "airflow"


def password_file(settings: Settings) -> Path:
    """Where the simple auth manager writes the generated password of the `admin` user."""
    return airflow_home(settings) / "simple_auth_manager_passwords.json.generated"


def standalone_env(settings: Settings, port: int = DEFAULT_PORT) -> dict[str, str]:
    """The environment of `airflow standalone`: loopback only, login required, meterflow's DAGs and home."""
    env = airflow_env(settings)
    url = f"http://{HOST}:{port}"
    env.update(
        {
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__WORKERS": "1",  # two cores: one API worker is plenty for a few operators
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(settings)),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",  # two cores
        }
    )
    return env


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def protect_password_file(settings: Settings) -> Path:
    """Create the password file readable by its owner only, before Airflow writes the password into it
    (Airflow keeps an existing file's mode; its own would be readable by every local user).

    Raises OSError when the path is a symbolic link or cannot be created.
    """
    path = password_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def prepare(settings: Settings, env: dict[str, str]) -> None:
    """Migrate the metadata database and create the one-slot pool. Raises MeterflowError on failure."""
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    protect_password_file(settings)
    for args in (["db", "migrate"], ["pools", "set", POOL, "1", POOL_DESCRIPTION]):
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise MeterflowError(f"airflow {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")


def wait_until_serving(proc: subprocess.Popen[bytes], port: int, timeout: float = READY_TIMEOUT_S) -> bool:
    """True once the API server answers on the port; False when standalone died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/monitor/health", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(2)
    return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of the group exists but is not ours to signal
        return True
    return True


def stop_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """Stop standalone and every process of its group: TERM, then KILL after `grace` seconds."""
    pgid = proc.pid  # the leader of the session it was started in
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not group_alive(pgid):
            break
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or it stays in the group as a zombie
            if not group_alive(pgid):
                break
            time.sleep(0.5)
    proc.wait()


def serve(settings: Settings, port: int = DEFAULT_PORT) -> int:
    """Run Airflow standalone until Ctrl-C or TERM; returns its exit code. Raises MeterflowError."""
    if port_in_use(port):
        raise MeterflowError(f"{HOST}:{port} is already in use; stop what listens there or pass --port")
    env = standalone_env(settings, port)
    print(f"preparing Airflow in {airflow_home(settings)} (database, pool {POOL}) …", flush=True)
    prepare(settings, env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"], env=env, start_new_session=True, cwd=settings.home
    )
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            print(f"\nstopping Airflow (signal {signal.Signals(signum).name}) …", flush=True)
            stop_group(proc)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if wait_until_serving(proc, port):
            print(
                f"\nAirflow is serving at http://{HOST}:{port}\n"
                f"  user: admin, password: in {password_file(settings)}\n"
                f"  DAGs: {env['AIRFLOW__CORE__DAGS_FOLDER']}; data home: {settings.home}\n"
                "  Ctrl-C stops Airflow and all its processes.",
                flush=True,
            )
        elif not stopping:
            print("Airflow did not start serving; see its output above.", file=sys.stderr, flush=True)
        while proc.poll() is None:
            time.sleep(0.5)
    finally:
        if not stopping:
            stopping = True
            stop_group(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Airflow stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl.devtools.airflow_standalone",
        description="Airflow 3 standalone on 127.0.0.1 with meterflow's DAGs; Ctrl-C stops every process.",
    )
    parser.add_argument("--home", type=Path, help="data home (overrides METERFLOW_HOME)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return serve(get_settings(args.home), args.port)
    except MeterflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while preparing, before Airflow itself started
        return 130


if __name__ == "__main__":
    sys.exit(main())
