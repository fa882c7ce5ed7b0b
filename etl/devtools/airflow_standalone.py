"""`make airflow`: Airflow 3 for operators, on 127.0.0.1 only, with meterflow's DAGs and a login.

Airflow's home is `<data home>/airflow` (metadata in SQLite, logs under `logs/`), the DAGs come from the
repository's `dags/`, and the tasks see `METERFLOW_HOME`. The simple auth manager asks for a login: the
user is `admin`, and its password is generated here, before Airflow starts, into
`<data home>/airflow/simple_auth_manager_passwords.json.generated` (owner-only), so that Airflow finds it
and never prints it.

What `airflow standalone` would start, this module starts itself: the scheduler, DAG processor, triggerer
and API server, each through `--component`, which binds the task log servers of the scheduler and the
triggerer to the loopback address (Airflow binds them to every address and has no setting for it). Their
whole output goes to `<data home>/airflow/logs/components.log`; the terminal shows warnings and errors
only, without banners or Python warnings. The components run in a session of their own, and Ctrl-C or
TERM stops the whole process group: TERM first, KILL for whatever is still there after a grace period.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import IO

from etl.devtools.airflow_local import airflow_env
from etl.errors import MeterflowError
from etl.settings import Settings, get_settings

log = logging.getLogger(__name__)

MODULE = "etl.devtools.airflow_standalone"
HOST = "127.0.0.1"
DEFAULT_PORT = 8080
POOL = "meterflow_duckdb"  # dags/meterflow.py: the marts writer runs alone
POOL_DESCRIPTION = "one writer of the DuckDB marts file at a time"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
READY_TIMEOUT_S = 300
STOP_GRACE_S = 30
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
LOG_SERVER_PORTS = {  # Airflow's defaults; the environment variables pick others
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": 8793,
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": 8794,
}


def airflow_home(settings: Settings) -> Path:
    return settings.home / "airflow"


def password_file(settings: Settings) -> Path:
    """Where the simple auth manager writes the generated password of the `admin` user."""
    return airflow_home(settings) / "simple_auth_manager_passwords.json.generated"


def loopback_hostname() -> str:
    """Airflow's `[core] hostname_callable`: the address the API server reads a running task's log from."""
    return HOST


def standalone_env(settings: Settings, port: int = DEFAULT_PORT) -> dict[str, str]:
    """The environment of the components: loopback only, login required, meterflow's DAGs and home."""
    env = airflow_env(settings)
    url = f"http://{HOST}:{port}"
    for name, default in LOG_SERVER_PORTS.items():
        env.setdefault(name, str(default))
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
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{MODULE}.loopback_hostname",
            "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
        }
    )
    return env


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def _private_file(path: Path) -> int:
    """Open `path` for reading and writing, created owner-only; raises OSError on a symbolic link."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def protect_password_file(settings: Settings) -> Path:
    """Make sure the password file is readable by its owner only and holds a password for `admin`.

    Airflow prints the password it generates for a user missing from the file, so meterflow writes it
    first (and Airflow keeps an existing file's mode; its own would be readable by every local user).
    Raises OSError when the path is a symbolic link or cannot be created.
    """
    path = password_file(settings)
    fd = _private_file(path)
    with os.fdopen(fd, "r+", encoding="utf-8") as f:
        text = f.read().strip()
        try:
            passwords = json.loads(text) if text else {}
        except json.JSONDecodeError:
            passwords = {}
        if not isinstance(passwords, dict) or not passwords.get("admin"):
            passwords = {**(passwords if isinstance(passwords, dict) else {}), "admin": _new_password()}
            f.seek(0)
            f.truncate()
            f.write(json.dumps(passwords) + "\n")
    return path


def _new_password() -> str:
    alphabet = "abcdefghkmnpqrstuvwxyzABCDEFGHKMNPQRSTUVWXYZ23456789"  # Airflow's, without look-alikes
    return "".join(secrets.choice(alphabet) for _ in range(20))


def jwt_secret(settings: Settings) -> str:
    """The key Airflow signs its tokens with: 64 random bytes kept owner-only in Airflow's home (the key
    Airflow generates itself is shorter than its HS512 algorithm asks for, and every token warns)."""
    fd = _private_file(airflow_home(settings) / "jwt_secret")
    with os.fdopen(fd, "r+", encoding="utf-8") as f:
        secret = f.read().strip()
        if len(secret) < 128:
            secret = secrets.token_hex(64)
            f.seek(0)
            f.truncate()
            f.write(secret + "\n")
    return secret


def prepare(settings: Settings, env: dict[str, str]) -> None:
    """Migrate the metadata database and create the one-slot pool. Raises MeterflowError on failure."""
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    protect_password_file(settings)
    env.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", jwt_secret(settings))
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
        raise MeterflowError(
            f"{HOST}:{port} is already in use; stop what listens there or pick another port: "
            f"make airflow PORT={port + 1}"
        )
    env = standalone_env(settings, port)
    for name in LOG_SERVER_PORTS:
        if port_in_use(int(env[name])):
            raise MeterflowError(
                f"{HOST}:{env[name]} (Airflow's task log server) is already in use; set {name} to a free port"
            )
    print(f"preparing Airflow in {airflow_home(settings)} (database, pool {POOL}) …", flush=True)
    prepare(settings, env)
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--components"], env=env, start_new_session=True, cwd=settings.home
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
            print(
                f"Airflow did not start serving; see {components_log(settings)}", file=sys.stderr, flush=True
            )
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


def components_log(settings: Settings) -> Path:
    return airflow_home(settings) / "logs" / "components.log"


# What the terminal leaves out (all of it is in components.log): Airflow's banner, its informational
# records (and the lines that continue them), Python warnings and uvicorn's notes.
BANNER = re.compile(r"^[\s_/|()\\]+$")
RECORD = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z? \[(\w+)\s*\]")
NOISE = re.compile(
    r"Warning\b|py\.warnings|warnings\.warn|Running the API server"
    r"|ASGI app factory detected|^(Apps|Workers|Host|Timeout|Logfiles):|^=+$"
)


class TerminalFilter:
    """Which lines of a component's output an operator needs to see: warnings, errors and anything
    unexpected, without banners, informational records (nor the lines that continue them) and Python
    warnings."""

    def __init__(self) -> None:
        self.in_shown_record = True

    def shows(self, line: str) -> bool:
        record = RECORD.match(line)
        if record:
            self.in_shown_record = record.group(1) not in ("debug", "info") and not NOISE.search(line)
            return self.in_shown_record
        if not line.strip() or BANNER.match(line) or NOISE.search(line.strip()):
            return False
        return self.in_shown_record


def _relay(name: str, stream: IO[str], log_file: IO[str], lock: threading.Lock) -> None:
    shown = TerminalFilter()
    for raw in stream:
        line = raw.rstrip("\n")
        with lock:
            log_file.write(f"{name} | {line}\n")
            log_file.flush()
            if shown.shows(line):
                print(f"{name:13} | {line}", flush=True)


def run_components(settings: Settings) -> int:
    """Start the four Airflow components and relay their output until one of them ends."""
    log_path = components_log(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    with open(log_path, "a", encoding="utf-8") as log_file:
        procs = {}
        for name in COMPONENTS:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", MODULE, "--component", name],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            assert procs[name].stdout is not None
            threading.Thread(
                target=_relay, args=(name, procs[name].stdout, log_file, lock), daemon=True
            ).start()
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        ended = [f"{name} (exit {p.returncode})" for name, p in procs.items() if p.poll() is not None]
        print(f"Airflow component ended: {', '.join(ended)}; stopping the others", flush=True)
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            p.wait()
    return 1


def run_component(name: str) -> int:
    """One Airflow component, its log servers bound to the loopback address only."""
    import uvicorn

    serve = uvicorn.run

    def loopback_run(app: object, *args: object, **kwargs: object) -> None:
        if kwargs.get("host") in (None, "", "0.0.0.0", "::"):
            kwargs["host"] = HOST
        serve(app, *args, **kwargs)  # type: ignore[arg-type]

    uvicorn.run = loopback_run  # the log server process is forked from this one and sees it
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", name]
    airflow_main()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl.devtools.airflow_standalone",
        description="Airflow 3 on 127.0.0.1 with meterflow's DAGs; Ctrl-C stops every process.",
    )
    parser.add_argument("--home", type=Path, help="data home (overrides METERFLOW_HOME)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--components", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--component", choices=COMPONENTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.component:
        return run_component(args.component)
    if args.components:
        return run_components(get_settings(args.home))
    try:
        return serve(get_settings(args.home), args.port)
    except MeterflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while preparing, before Airflow itself started
        return 130


if __name__ == "__main__":
    sys.exit(main())
