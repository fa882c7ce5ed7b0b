"""Crash safety: `meterflow run` killed with SIGKILL at random points of ingestion, VEE, the marts build
and the publish, then run again, publishes exactly the figures of a clean run and leaves no temporary
file behind.

Real timing, no kill hooks: each round starts `meterflow run` as a child process, waits until it holds
the lock of the stage aimed at (state/<stage>.lock names its holder's pid), sleeps a random delay drawn
from a seeded generator and kills the whole process group. Rounds follow each other in one data home,
so each one starts from whatever the killed one left behind.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl.lake import committed_stems
from etl.settings import Settings
from tests.conftest import published_tables

METERFLOW = Path(sys.executable).parent / "meterflow"
STAGES = ("ingest", "vee", "marts", "publish")
# Seconds a kill may wait after the stage took its lock: about the stage's length on the tiny company.
WINDOWS = {"ingest": 1.5, "vee": 1.0, "marts": 0.5, "publish": 1.5}
ATTEMPTS = 3
SEEDS = (11, 12)
LOCK_WAIT_S = 120.0


@dataclass(frozen=True)
class Kill:
    """One round: the stage aimed at, the delay drawn, and where the kill landed."""

    aimed: str
    delay: float
    landed: str  # the stage whose lock the run held when killed, "between" stages, or "finished"


def start(home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ) | {"METERFLOW_HOME": str(home), "METERFLOW_THREADS": "2"}
    env.pop("METERFLOW_TEMP_DIR", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(METERFLOW), "-v", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill reaches every child too
        )


def holder_pid(home: Path, lock: str) -> int | None:
    """The pid a lock file names; a released lock is empty (a killed holder's name stays, but its pid
    is then that of a dead process)."""
    try:
        text = (home / "state" / f"{lock}.lock").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    parts = text.split()
    return int(parts[0]) if parts else None


def held_stage(home: Path, pid: int) -> str:
    return next((s for s in STAGES if holder_pid(home, s) == pid), "between")


def kill_in(home: Path, stage: str, delay: float, log: Path) -> Kill:
    """Start a run, wait for it to take `stage`'s lock, wait `delay` more and SIGKILL it."""
    proc = start(home, log)
    deadline = time.monotonic() + LOCK_WAIT_S
    while holder_pid(home, stage) != proc.pid and proc.poll() is None:
        assert time.monotonic() < deadline, f"the run never took the {stage} lock; see {log}"
        time.sleep(0.01)
    time.sleep(delay)
    landed = held_stage(home, proc.pid) if proc.poll() is None else "finished"
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        landed = "finished"
    code = proc.wait()
    assert code in (0, -signal.SIGKILL), f"the run failed by itself ({code}); see {log}"
    return Kill(stage, round(delay, 3), landed)


def assert_published_marts_whole(settings: Settings) -> None:
    """Whatever a kill interrupted, the published file (if any yet) opens and has every mart."""
    if settings.marts_path.exists():
        con = duckdb.connect(str(settings.marts_path), read_only=True)
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        con.close()
        assert {"mart_kpi_monthly", "mart_sales_monthly", "mart_energy_balance_monthly"} <= tables


def leftovers(settings: Settings) -> list[Path]:
    """Temporary and orphan files: scratch of killed runs that a finished run must have removed."""
    home, lake = settings.home, settings.lake
    found = [p for d in (lake / "_tmp", settings.warehouse / ".building") if d.is_dir() for p in d.iterdir()]
    quality_scratch = home / "tmp" / "quality"
    if quality_scratch.is_dir():
        found += list(quality_scratch.iterdir())
    committed = committed_stems(settings)
    for top in ("raw", "quarantine"):
        found += [p for p in (lake / top).rglob("*.parquet") if p.stem not in committed]
    found += list(settings.warehouse.glob("*.wal")) + list(settings.state.glob("*.tmp"))
    return sorted(found)


def copy_landing(source: Settings, home: Path, files: list[str]) -> None:
    for rel in files:
        dest = home / "landing" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((source.landing / rel).read_bytes())


def kill_rounds(
    home: Path, rng: random.Random, log: Path, deliveries: list[Callable[[], None]]
) -> list[Kill]:
    """One kill aimed at each stage in turn, after a random delay; a kill that lands past its stage is
    tried again sooner, the last try as the stage takes its lock (a stage that finished before its kill has
    done its work, so a later run of it may take no time at all).

    The close's landing files arrive one `deliveries` call at a time: one before each kill aimed at ingest,
    so that a second try at ingest has files to take, the rest before the kills aimed at the later stages.
    """
    kills = []
    pending = list(deliveries)
    for stage in STAGES:
        delay = rng.uniform(0, WINDOWS[stage])
        for attempt in range(1, ATTEMPTS + 1):
            if stage == "ingest" and pending:
                pending.pop(0)()
            kills.append(kill_in(home, stage, delay if attempt < ATTEMPTS else 0.0, log))
            if kills[-1].landed == stage:
                break
            delay /= 4
        while pending:
            pending.pop(0)()
    return kills


def test_runs_killed_in_every_stage_then_rerun_publish_the_clean_figures(
    tiny_company: Settings, tmp_path: Path
) -> None:
    drops = json.loads((tiny_company.home / "truth" / "drops.json").read_text(encoding="utf-8"))
    months = sorted(drops)
    settings = Settings(home=tmp_path / "home", threads=2, memory_limit="2GB")
    log = tmp_path / "runs.log"
    kills = []
    # two closes of two months each, with a kill aimed at every stage: the second one works incrementally.
    # A close's months land one after the other, each before a kill aimed at ingest while it misses.
    for seed, closes in zip(SEEDS, (months[:2], months[2:]), strict=True):
        deliveries = [functools.partial(copy_landing, tiny_company, settings.home, drops[m]) for m in closes]
        kills += kill_rounds(settings.home, random.Random(seed), log, deliveries)
        assert_published_marts_whole(settings)
    assert set(STAGES) <= {k.landed for k in kills}, kills

    final = start(settings.home, log)
    assert final.wait(timeout=600) == 0, log.read_text(encoding="utf-8")[-3000:]
    assert published_tables(settings.marts_path) == published_tables(tiny_company.marts_path)
    assert leftovers(settings) == []


def test_only_scratch_files_of_exited_writers_are_removed(tmp_path: Path) -> None:
    from etl.lake import remove_abandoned, scratch_name

    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(exited.stdout)
    mine = tmp_path / scratch_name(".parquet")
    dead = tmp_path / mine.name.replace(f"~{os.getpid()}~", f"~{dead_pid}~")
    other_host = tmp_path / f"elsewhere~{dead_pid}~{mine.name.split('~')[2]}"
    untagged = tmp_path / "0f3a9c.parquet"
    for path in (mine, dead, other_host, untagged):
        path.write_bytes(b"x")
    # a partitioned write's scratch folder (VEE writes a pass's months in one COPY ... PARTITION_BY)
    dead_folder = tmp_path / scratch_name().replace(f"~{os.getpid()}~", f"~{dead_pid}~")
    live_folder = tmp_path / scratch_name()
    for folder in (dead_folder, live_folder):
        (folder / "period=2025-01").mkdir(parents=True)
        (folder / "period=2025-01" / "data_0.parquet").write_bytes(b"x")
    assert remove_abandoned(tmp_path) == sorted([dead, dead_folder])
    kept = (mine, other_host, untagged, live_folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)
