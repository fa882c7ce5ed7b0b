"""A lock over the data home, so that only one run at a time does a single-writer job.

The lock is an flock on `<home>/state/<name>.lock`: the kernel releases it when the holder exits, even
after a crash, so there is never a stale lock to clean up. The holder writes its pid and start time into
the file, only to tell a waiting run who it is waiting for.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from etl.errors import LockError
from etl.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
HOLDER_READS = 10


def lock_path(settings: Settings, name: str) -> Path:
    return settings.state / f"{name}.lock"


@contextmanager
def data_home_lock(settings: Settings, name: str, wait: float = 0) -> Iterator[Path]:
    """Hold lock `name` of the data home for the `with` block; waits up to `wait` seconds for it.

    Raises LockError, naming the holder's pid and start time, when another process keeps it longer.
    Not re-entrant: taking the same lock twice in one process waits for itself.
    """
    path = lock_path(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        _acquire(fd, path, name, wait)
        _write_holder(fd)
        log.debug("holding lock %s", path)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, name: str, wait: float) -> None:
    """Take the flock, polling until `wait` seconds have passed. Raises LockError when it cannot."""
    deadline = time.monotonic() + max(wait, 0)
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            held = _holder(fd, path, name)
            if time.monotonic() >= deadline:
                raise LockError(f"{held}; gave up after waiting {wait:g} s") from None
            if not announced:
                log.info("%s; waiting up to %g s", held, wait)
                announced = True
            time.sleep(POLL_SECONDS)


def _write_holder(fd: int) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {since}\n".encode(), 0)


def _holder(fd: int, path: Path, name: str) -> str:
    """Who holds the lock, as the holder wrote it (it may not have written yet)."""
    parts: list[str] = []
    # the holder writes its name just after taking the lock: a run started at the same moment may look
    # in between, so it gives the holder a moment before calling it unknown
    for _ in range(HOLDER_READS):
        parts = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
        if parts:
            break
        time.sleep(POLL_SECONDS / HOLDER_READS)
    pid = parts[0] if parts else "unknown"
    since = parts[1] if len(parts) > 1 else "an unknown time"
    return f"another meterflow run holds the {name} lock ({path}) since {since}, pid {pid}"
