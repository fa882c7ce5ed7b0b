"""The data-home lock: one holder at a time, a clear message for the loser, released even on a crash."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from etl.errors import LockError
from etl.lock import data_home_lock, lock_path
from etl.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_the_lock_file_names_its_holder_and_is_emptied_on_release(settings: Settings) -> None:
    with data_home_lock(settings, "ingest") as path:
        assert path == settings.home / "state" / "ingest.lock"
        pid, since = path.read_text().split()
        assert int(pid) == os.getpid()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", since)
    assert path.read_text() == ""
    with data_home_lock(settings, "ingest"):  # free again
        pass


def test_a_second_holder_fails_with_the_holders_pid_and_start(settings: Settings) -> None:
    with data_home_lock(settings, "ingest") as path:
        pid, since = path.read_text().split()
        with pytest.raises(LockError) as info:
            with data_home_lock(settings, "ingest", wait=0.3):
                pytest.fail("two holders at once")
    assert str(info.value) == (
        f"another meterflow run holds the ingest lock ({path}) since {since}, pid {pid}; "
        "gave up after waiting 0.3 s"
    )


def test_locks_of_other_names_do_not_conflict(settings: Settings) -> None:
    with data_home_lock(settings, "ingest"), data_home_lock(settings, "publish"):
        assert lock_path(settings, "publish").read_text().split()[0] == str(os.getpid())


def test_a_waiting_run_gets_the_lock_when_the_holder_lets_go(settings: Settings) -> None:
    held = threading.Event()

    def hold() -> None:
        with data_home_lock(settings, "ingest"):
            held.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    start = time.monotonic()
    with data_home_lock(settings, "ingest", wait=10):
        waited = time.monotonic() - start
    holder.join()
    assert 0.2 < waited < 5


def test_a_killed_holder_leaves_no_stale_lock(settings: Settings) -> None:
    code = (
        "import sys, time\n"
        "from etl.lock import data_home_lock\n"
        "from etl.settings import Settings\n"
        f"with data_home_lock(Settings.from_env({str(settings.home)!r}), 'ingest'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=rf"since .*, pid {proc.pid}; gave up after waiting 0 s"):
            with data_home_lock(settings, "ingest"):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with data_home_lock(settings, "ingest", wait=0):
        pass
