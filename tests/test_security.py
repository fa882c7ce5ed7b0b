"""Security: no credential in the repository, a login in front of Airflow, secrets only from the
environment, no personal data in the marts, a read-only SQL session for analysts, and no landing file
name that makes meterflow write outside the data home."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from etl.devtools import airflow_standalone
from etl.devtools.airflow_standalone import password_file, standalone_env
from etl.ingest.run import ingest
from etl.settings import Settings
from etl.sqlshell import open_marts, run_sql

REPO = Path(__file__).resolve().parent.parent

# What a committed credential looks like. Each pattern is tried on planted text below, so that a
# pattern that can no longer match anything fails the test instead of passing it for ever.
SECRET_PATTERNS: dict[str, str] = {
    "assigned secret": r"(?i)\w*(pass(word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"fernet[_-]?key)\w*[\"']?\s*[:=]\s*[\"'][^\"'\s]{8,}[\"']",
    "AWS access key": r"\bAKIA[0-9A-Z]{16}\b",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    "Slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "credentials in a URL": r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:[^\s@/'\"]+@",
    "JSON web token": r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.",
}
# Planted text, assembled so that this file itself holds no match.
PLANTED = {
    "assigned secret": "db_" + 'password = "' + "hunter2hunter2" + '"',
    "AWS access key": "AKIA" + "IOSFODNN7EXAMPLE",
    "private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
    "GitHub token": "ghp" + "_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "Slack token": "xox" + "b-1234567890-abcdefghij",
    "credentials in a URL": "postgresql://etl" + ":s3cret" + "@db.example:5432/meter",
    "JSON web token": "eyJ" + "hbGciOiJIUzI1NiJ9." + "eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0.sig",
}
# Files that hold secrets by nature and must never be tracked.
SECRET_FILES = (
    r"(^|/)(\.env(\..*)?|.*\.pem|.*\.key|.*\.p12|id_rsa.*|id_ed25519.*|airflow\.cfg|.*\.generated)$"
)


def secrets_in(text: str) -> list[tuple[str, str]]:
    return [
        (name, m.group(0)) for name, pattern in SECRET_PATTERNS.items() for m in re.finditer(pattern, text)
    ]


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    return [f for f in done.stdout.split("\0") if f]


# --- the repository --------------------------------------------------------------------------------


def test_every_credential_pattern_finds_its_planted_example() -> None:
    assert {name for name, _ in secrets_in("\n".join(PLANTED.values()))} == set(SECRET_PATTERNS)
    assert secrets_in('token = os.environ["METERFLOW_TOKEN"]\nAIRFLOW__API__PORT: "8080"') == []


def test_no_credential_is_committed() -> None:
    files = tracked_files()
    assert len(files) > 50
    found = []
    for name in files:
        path = REPO / name
        if path.is_file() and not path.is_symlink():
            found += [
                (name, kind, match)
                for kind, match in secrets_in(path.read_bytes().decode("utf-8", "replace"))
            ]
    assert found == []
    assert [f for f in files if re.search(SECRET_FILES, f)] == []


def test_generated_secrets_stay_out_of_git() -> None:
    """The data home (with Airflow's generated password) and a local Airflow home are ignored."""
    tracked_files()
    paths = ["data/airflow/simple_auth_manager_passwords.json.generated", "airflow_home/airflow.cfg"]
    done = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.split() == paths


# --- Airflow ---------------------------------------------------------------------------------------


def test_airflow_standalone_asks_for_a_login_on_loopback_only(tmp_path: Path) -> None:
    env = standalone_env(Settings(home=tmp_path), port=8089)
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    # users as user:role, no password: Airflow generates it into the data home
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]) == password_file(
        Settings(home=tmp_path)
    )
    assert str(tmp_path) in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]


def test_secrets_for_airflow_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "from-the-operators-vault")
    env = standalone_env(Settings(home=tmp_path))
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "from-the-operators-vault"


def test_the_generated_password_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path)
    ran = []
    monkeypatch.setattr(
        airflow_standalone.subprocess,
        "run",
        lambda args, **kw: ran.append(args[3:]) or subprocess.CompletedProcess(args, 0, "", ""),
    )
    airflow_standalone.prepare(settings, standalone_env(settings))
    assert ran == [
        ["db", "migrate"],
        ["pools", "set", "meterflow_duckdb", "1", airflow_standalone.POOL_DESCRIPTION],
    ]
    mode = stat.S_IMODE(password_file(settings).stat().st_mode)
    assert mode == 0o600, oct(mode)


# Airflow's own API app with meterflow's configuration, in a child process (Airflow reads its
# configuration once, at import): what a browser or a script without a login gets.
LOGIN_PROBE = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

client = TestClient(create_app())
out = {path: client.get(path).status_code for path in ("/api/v2/dags", "/api/v2/variables", "/ui/dags")}
out["token without login"] = client.get("/auth/token").status_code
out["admin:admin"] = client.post("/auth/token", json={"username": "admin", "password": "admin"}).status_code
password = json.loads(Path(sys.argv[1]).read_text())["admin"]
token = client.post("/auth/token", json={"username": "admin", "password": password})
out["generated password"] = token.status_code
print(json.dumps(out))
"""


def test_airflow_refuses_every_request_without_a_login(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    env = standalone_env(settings, port=8089)
    airflow_standalone.protect_password_file(settings)
    done = subprocess.run(
        [sys.executable, "-c", LOGIN_PROBE, str(password_file(settings))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "/api/v2/dags": 401,
        "/api/v2/variables": 401,
        "/ui/dags": 401,
        "token without login": 403,
        "admin:admin": 401,
        "generated password": 201,
    }
    assert stat.S_IMODE(password_file(settings).stat().st_mode) == 0o600


# --- personal data -----------------------------------------------------------------------------------


def personal_values(settings: Settings) -> list[str]:
    """Every customer name, address and phone number of every customers snapshot in landing/."""
    files = sorted(str(p) for p in (settings.landing / "reference").glob("customers_*.csv*"))
    rows = duckdb.sql(
        "select distinct v from (select unnest([customer_name, address, phone]) as v "
        f"from read_csv({files}, all_varchar = true, header = true)) where v is not null and length(v) >= 4"
    ).fetchall()
    return [r[0] for r in rows]


def personal_data_in(marts: Path, values: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) for every text cell of every table that contains one of `values`."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{marts}' as m (read_only)")
        con.execute("create table pii (v varchar)")
        con.executemany("insert into pii values (?)", [[v] for v in values])
        columns = con.execute(
            "select table_name, column_name from duckdb_columns() "
            "where database_name = 'm' and data_type = 'VARCHAR' order by all"
        ).fetchall()
        found = []
        for table, column in columns:
            hits = con.execute(
                f'select distinct pii.v from m."{table}" as t '
                f'join pii on contains(t."{column}", pii.v) limit 5'
            ).fetchall()
            found += [(table, column, v) for (v,) in hits]
        return found
    finally:
        con.close()


def test_no_customer_name_address_or_phone_reaches_the_marts(generated_company: Settings) -> None:
    values = personal_values(generated_company)
    assert len(values) > 600
    assert personal_data_in(generated_company.marts_path, values) == []
    con = duckdb.connect(str(generated_company.marts_path), read_only=True)
    columns = {r[0] for r in con.execute("select column_name from duckdb_columns()").fetchall()}
    con.close()
    assert columns & {"customer_name", "address", "phone"} == set()


def test_the_personal_data_scan_finds_a_planted_name(generated_company: Settings, tmp_path: Path) -> None:
    values = personal_values(generated_company)
    planted = tmp_path / "planted.duckdb"
    con = duckdb.connect(str(planted))
    con.execute("create table mart_x (note varchar)")
    con.execute("insert into mart_x values ('ok'), (?)", [f"call {values[0]} back"])
    con.close()
    assert personal_data_in(planted, values) == [("mart_x", "note", values[0])]


# --- the analysts' SQL session --------------------------------------------------------------------------


@pytest.fixture
def marts_copy(fixture_marts_home: Path, tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    (home / "warehouse").mkdir(parents=True)
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", home / "warehouse" / "marts.duckdb")
    return Settings(home=home, threads=1, memory_limit="512MB")


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("select * from read_csv('/etc/passwd')", "disabled by configuration"),
        ("select * from read_text('/etc/hostname')", "disabled by configuration"),
        ("select * from glob('/*')", "disabled by configuration"),
        ("select * from sniff_csv('/etc/passwd')", "disabled by configuration"),
        ("install httpfs", "disabled by configuration"),
        ("load httpfs", "disabled through configuration"),
        ("export database '{tmp}/export'", "disabled by configuration"),
        ("copy (select 1) to '{tmp}/x.csv'", "disabled by configuration"),
        ("create secret s3 (type s3, key_id 'a', secret 'b')", "disabled by configuration"),
        ("set lock_configuration = false", "configuration has been locked"),
        ("reset enable_external_access", "configuration has been locked"),
        ("set allowed_directories = ['/']", "configuration has been locked"),
        ("set temp_directory = '{tmp}'", "configuration has been locked"),
        ("attach ':memory:' as scratch", "read-only mode"),
        ("alter table mart_kpi_monthly rename to gone", "read-only mode"),
        ("truncate mart_sales_monthly", "read-only mode"),
    ],
)
def test_the_sql_session_refuses_to_reach_outside_the_marts(
    marts_copy: Settings, tmp_path: Path, statement: str, refusal: str
) -> None:
    before = hashlib.sha256(marts_copy.marts_path.read_bytes()).hexdigest()
    con = open_marts(marts_copy)
    try:
        with pytest.raises(duckdb.Error, match=re.escape(refusal)):
            run_sql(con, statement.format(tmp=tmp_path))
        assert run_sql(con, "select count(*) from mart_kpi_monthly").rows[0][0] > 0
    finally:
        con.close()
    assert hashlib.sha256(marts_copy.marts_path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_checkpoint_and_vacuum_in_the_session_leave_the_file_as_it_was(marts_copy: Settings) -> None:
    before = hashlib.sha256(marts_copy.marts_path.read_bytes()).hexdigest()
    con = open_marts(marts_copy)
    for statement in ("create temp table t as select 1 as x", "checkpoint", "force checkpoint", "vacuum"):
        run_sql(con, statement)
    con.close()
    assert hashlib.sha256(marts_copy.marts_path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in marts_copy.warehouse.iterdir()) == ["marts.duckdb"]


# --- landing file names -----------------------------------------------------------------------------------

HOSTILE_NAMES = (
    "interval_reads_..csv",
    "interval_reads_...csv",
    "interval_reads_..%2F..%2Fescape.csv",
    "interval_reads_~root.csv",
    "interval_reads_$HOME.csv",
    "interval_reads_\n..\nescape.csv",
    "interval_reads_\r.csv",
    "interval_reads_\t\x01\x7f.csv",
    "interval_reads_' || (select 1) || '.csv",
    "interval_reads_\"; copy x to '..'; --.csv",
    "interval_reads_C:\\Windows\\escape.csv",
    "interval_reads_" + "x" * 200 + ".csv",
)


def test_no_landing_file_name_makes_meterflow_write_outside_the_data_home(tmp_path: Path) -> None:
    root = tmp_path / "root"
    home = root / "home"
    readings = home / "landing" / "readings"
    readings.mkdir(parents=True)
    names = list(HOSTILE_NAMES)
    for i, name in enumerate(names):
        body = f"meter_id,interval_start,interval_minutes,kwh,quality\nNX{i},2025-01-15T10:00:00,30,1,A\n"
        (readings / name).write_text(body, encoding="utf-8")
    before = {p for p in tmp_path.rglob("*")}
    cwd = Path.cwd()
    os.chdir(root)
    try:
        report = ingest(Settings(home=home, threads=1, memory_limit="512MB"), "names")
    finally:
        os.chdir(cwd)
    assert sorted(f.source_file for f in report.files) == sorted(f"readings/{n}" for n in names)
    assert {f.status for f in report.files} == {"INGESTED"}
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(home in p.parents for p in created)
    lake_names = {p.name for p in created if p.suffix == ".parquet"}
    assert all(re.fullmatch(r"\d{9}_[0-9a-f]{64}\.parquet", n) for n in lake_names)


# --- make airflow: loopback listeners and no password on the terminal -----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listeners_of_tree(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket of the process `pid` and all its descendants
    (Airflow's components run in a process group of their own, below the one `make` started)."""
    found = set()
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for proc in tree:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_make_airflow_listens_on_loopback_only_and_never_prints_the_password(tmp_path: Path) -> None:
    """`make airflow PORT=…` on a fresh data home: the API server and both task log servers listen on
    127.0.0.1 and nowhere else, the terminal shows no password, no banner and no Python warning, and
    the password file is the owner's only."""
    port, worker_logs, trigger_logs = _free_port(), _free_port(), _free_port()
    env = dict(
        os.environ,
        METERFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(worker_logs),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(trigger_logs),
    )
    env.pop("AIRFLOW_HOME", None)
    out_path = tmp_path / "make_airflow.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "airflow", f"PORT={port}"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        listeners: set[tuple[str, int]] = set()
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and proc.poll() is None:
            listeners = _listeners_of_tree(proc.pid)
            if {p for _, p in listeners} >= {port, worker_logs, trigger_logs} and b"serving" in (
                out_path.read_bytes()
            ):
                break
            time.sleep(2)
        time.sleep(5)  # anything that starts a moment later
        listeners = _listeners_of_tree(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = out_path.read_text(errors="replace")
    assert listeners == {("127.0.0.1", port), ("127.0.0.1", worker_logs), ("127.0.0.1", trigger_logs)}, (
        output[-3000:]
    )
    secret_file = password_file(Settings(home=tmp_path / "home"))
    password = json.loads(secret_file.read_text())["admin"]
    assert len(password) >= 16
    assert password not in output
    assert "Password for user" not in output
    assert f"Airflow is serving at http://127.0.0.1:{port}" in output
    assert "Airflow stopped." in output
    assert "____________" not in output  # Airflow's banner
    assert "Warning" not in output
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    log = (tmp_path / "home" / "airflow" / "logs" / "components.log").read_text(errors="replace")
    assert "scheduler" in log and "api-server" in log
    assert password not in log


def test_make_airflow_names_the_make_variable_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            ["make", "--no-print-directory", "airflow", f"PORT={port}"],
            cwd=REPO,
            env=dict(os.environ, METERFLOW_HOME=str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    assert f"make airflow PORT={port + 1}" in done.stderr


def test_the_terminal_filter_keeps_warnings_and_drops_banners_and_chatter() -> None:
    lines = [
        "____________       _____________",
        " _/_/  |_/_/  /_/    /_/    /_/  \\____/____/|__/",
        "2026-12-06T16:25:05.151489Z [info     ] Loaded executor: :LocalExecutor: [x] loc=a.py:1",
        "================================================================================",
        "DAG File Processing Stats",
        "2026-12-06T16:25:06.042108Z [warning  ] Using `httpx` is deprecated [py.warnings] "
        "category=StarletteDeprecationWarning",
        "2026-12-06T16:25:07.000000Z [error    ] Task failed [airflow.task] loc=b.py:2",
        "Traceback (most recent call last):",
        "2026-12-06T16:25:08.000000Z [warning  ] Pool meterflow_duckdb is full [airflow] loc=c.py:3",
    ]
    shown = airflow_standalone.TerminalFilter()
    assert [line for line in lines if shown.shows(line)] == [lines[6], lines[7], lines[8]]
