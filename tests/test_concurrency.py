"""Concurrency: analysts reading marts.duckdb in another process keep working through publishes; two
`meterflow run` at once are serialised by the data home's lock, the second told who holds it; ingestion
processes running side by side never corrupt the lake or the manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from etl.lake import committed_stems, manifest_files
from etl.pipeline import run, stage_publish
from etl.settings import Settings
from tests.conftest import published_tables

METERFLOW = Path(sys.executable).parent / "meterflow"

# An analyst in another process, querying the marts (a join) until the file `stop` appears: with one
# connection kept open all along ("kept") or a new connection per query ("fresh"). Two processes,
# because DuckDB shares one open database among all connections of a process.
READER = r"""
import json, sys, time
from pathlib import Path
import duckdb

marts, folder, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
query = (
    "select count(*), sum(k.kwh_sold), count(distinct s.tariff_code) "
    "from mart_kpi_monthly as k join mart_sales_monthly as s using (period) where k.region_code = 'ALL'"
)
kept = duckdb.connect(marts, read_only=True) if mode == "kept" else None
(folder / f"ready-{mode}").touch()
states, errors, queries = set(), [], 0
deadline = time.monotonic() + 300
while not (folder / "stop").exists() and time.monotonic() < deadline:
    try:
        con = kept or duckdb.connect(marts, read_only=True)
        states.add(repr(con.execute(query).fetchone()))
        if con is not kept:
            con.close()
        queries += 1
    except Exception as exc:
        errors.append(repr(exc))
print(json.dumps({"queries": queries, "states": sorted(states), "errors": errors[:5], "failed": len(errors)}))
"""


def copy_landing(source: Settings, home: Path, files: list[str]) -> None:
    for rel in files:
        dest = home / "landing" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((source.landing / rel).read_bytes())


def drops(company: Settings) -> list[list[str]]:
    """The landing files of each month close, in order."""
    by_month = json.loads((company.home / "truth" / "drops.json").read_text(encoding="utf-8"))
    return [by_month[m] for m in sorted(by_month)]


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ) | {"METERFLOW_HOME": str(home), "METERFLOW_THREADS": "2", "COLUMNS": "2000"}
    env.pop("METERFLOW_TEMP_DIR", None)
    return env


def assert_manifest_whole(settings: Settings, landing_files: int) -> None:
    """One manifest row per landing file read, no sequence number twice, no raw file without a row."""
    files = [str(p) for p in manifest_files(settings)]
    con = duckdb.connect()
    rows = con.execute("select source_file, ingest_seq from read_parquet(?)", [files]).fetchall()
    con.close()
    assert len(rows) == landing_files
    assert len({r[0] for r in rows}) == len({r[1] for r in rows}) == landing_files
    committed = committed_stems(settings)
    assert all(p.stem in committed for p in (settings.lake / "raw").rglob("*.parquet"))


def test_analysts_keep_reading_while_new_marts_are_published(tiny_company: Settings, tmp_path: Path) -> None:
    closes = drops(tiny_company)
    settings = Settings(home=tmp_path / "home", threads=2, memory_limit="2GB")
    copy_landing(tiny_company, settings.home, [f for close in closes[:2] for f in close])
    assert run(settings, run_id="before").published == settings.marts_path
    signals = tmp_path / "signals"
    signals.mkdir()
    readers = {
        mode: subprocess.Popen(
            [sys.executable, "-c", READER, str(settings.marts_path), str(signals), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("kept", "fresh")
    }
    try:
        deadline = time.monotonic() + 120
        while not all((signals / f"ready-{mode}").exists() for mode in readers):
            assert all(r.poll() is None for r in readers.values()), "a reader died"
            assert time.monotonic() < deadline, "the readers never started"
            time.sleep(0.05)
        copy_landing(tiny_company, settings.home, [f for close in closes[2:] for f in close])
        assert run(settings, run_id="after").published == settings.marts_path
        assert stage_publish(settings, "again", force=True) == settings.marts_path
        time.sleep(0.5)
    finally:
        (signals / "stop").touch()
        outs = {mode: r.communicate(timeout=120) for mode, r in readers.items()}
    results = {}
    for mode, reader in readers.items():
        assert reader.returncode == 0, outs[mode][1]
        results[mode] = json.loads(outs[mode][0])
        assert results[mode]["failed"] == 0, results[mode]["errors"]
        assert results[mode]["queries"] >= 10, results[mode]
    # the kept connection reads the file it opened, whole; new connections see the new marts
    assert len(results["kept"]["states"]) == 1
    assert len(results["fresh"]["states"]) == 2
    assert results["kept"]["states"][0] in results["fresh"]["states"]
    assert published_tables(settings.marts_path) == published_tables(tiny_company.marts_path)


def test_two_runs_at_once_are_serialised_and_the_second_names_the_holder(
    tiny_company: Settings, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    files = [f for close in drops(tiny_company) for f in close]
    copy_landing(tiny_company, home, files)
    procs = [
        subprocess.Popen(
            [str(METERFLOW), "run"],
            env=env_for(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted((p.returncode, i) for i, p in enumerate(procs))
    assert [c for c, _ in codes] == [0, 1], outs
    winner, loser = procs[codes[0][1]], procs[codes[1][1]]
    message = " ".join(outs[codes[1][1]][0].split())
    assert f"error: another meterflow run holds the run lock ({home / 'state' / 'run.lock'}) since" in message
    assert f"pid {winner.pid}; gave up after waiting 0 s" in message
    assert loser.pid != winner.pid
    settings = Settings(home=home, threads=2, memory_limit="2GB")
    assert_manifest_whole(settings, len(files))
    assert published_tables(settings.marts_path) == published_tables(tiny_company.marts_path)


def test_ingestion_processes_side_by_side_queue_on_the_lock(tiny_company: Settings, tmp_path: Path) -> None:
    """As the Airflow ingestion DAGs of two source families do: each waits its turn for the ingest
    lock, every file is read once, the manifest stays whole."""
    home = tmp_path / "home"
    files = [f for close in drops(tiny_company) for f in close]
    copy_landing(tiny_company, home, files)
    folders = ("readings", "billing")
    procs = [
        subprocess.Popen(
            [str(METERFLOW), "ingest", "--folder", folder],
            env=env_for(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(folders), outs
    assert_manifest_whole(Settings(home=home), len([f for f in files if f.split("/")[0] in folders]))


def test_a_run_that_looks_just_as_the_holder_takes_the_lock_still_names_it(tmp_path: Path) -> None:
    """The holder writes its pid just after taking the flock; a run looking in between waits for it."""
    import fcntl
    import threading

    from etl.errors import LockError
    from etl.lock import data_home_lock, lock_path

    settings = Settings(home=tmp_path)
    path = lock_path(settings, "run")
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # taken, the name not written yet
    writer = threading.Timer(0.05, lambda: os.pwrite(fd, b"4242 2025-10-01T01:00:00+00:00\n", 0))
    writer.start()
    try:
        with pytest.raises(LockError) as caught, data_home_lock(settings, "run", wait=0):
            pass
    finally:
        writer.join()
        os.close(fd)
    assert str(caught.value) == (
        f"another meterflow run holds the run lock ({path}) since 2025-10-01T01:00:00+00:00, pid 4242; "
        "gave up after waiting 0 s"
    )
