"""A lock over the data home, so that only one run at a time does a single-writer job.

On one machine the lock is an flock on `<home>/state/<name>.lock`: the kernel releases it when the holder
exits, even after a crash, so there is never a stale lock to clean up. The holder writes its pid and start
time into the file, only to tell a waiting run who it is waiting for.

Across machines (Airflow workers on several hosts) a file lock is not enough: with METERFLOW_LOCK_URL set to
a Postgres URL (`postgresql://` with user, password, host, port and database) the lock is a session-level
Postgres advisory lock on a 64-bit key made from the data home and the lock's name. Postgres releases it
when the holder's connection ends, a crashed or killed holder included (TCP keepalives notice a vanished
host). The holder's connection carries `meterflow pid <pid>@<host> <start>` as its application_name, which
is how a waiting run names it. Every host must then see the data home under the same path or URI (an S3
home is keyed by its URI, whatever the working copy's folder).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.errors import LockError
from etl.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
HOLDER_READS = 10
LOCK_URL_ENV = "METERFLOW_LOCK_URL"


def lock_path(settings: Settings, name: str) -> Path:
    return settings.state / f"{name}.lock"


@contextmanager
def data_home_lock(settings: Settings, name: str, wait: float = 0) -> Iterator[Path]:
    """Hold lock `name` of the data home for the `with` block; waits up to `wait` seconds for it.

    Raises LockError, naming the holder's pid and start time, when another process keeps it longer.
    Not re-entrant: taking the same lock twice in one process waits for itself. With METERFLOW_LOCK_URL
    set the lock is a Postgres advisory lock (see the module's docstring) and no file is written; the
    path yielded is then only the lock's name.
    """
    path = lock_path(settings, name)
    url = os.environ.get(LOCK_URL_ENV)
    if url:
        with advisory_lock(url, settings, name, wait):
            yield path
        return
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


def advisory_key(settings: Settings, name: str) -> int:
    """The lock's 64-bit key: the same data home and name give the same key on every host."""
    digest = hashlib.blake2b(f"meterflow:{settings.location}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def advisory_lock(url: str, settings: Settings, name: str, wait: float = 0) -> Iterator[int]:
    """Hold the Postgres advisory lock of `name` over the data home; waits up to `wait` seconds.

    Raises LockError naming the holder (its pid, host and start) when another session keeps it longer, or
    naming the database when it cannot be reached.
    """
    import psycopg2

    key = advisory_key(settings, name)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    label = f"meterflow pid {os.getpid()}@{socket.gethostname()} {since}"[:63]
    try:
        con = psycopg2.connect(
            url,
            application_name=label,
            connect_timeout=10,
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
    except psycopg2.OperationalError as exc:
        raise LockError(
            f"cannot reach the lock database ({LOCK_URL_ENV}) for the {name} lock: {exc}"
        ) from exc
    con.autocommit = True
    try:
        _acquire_advisory(con, key, settings, name, wait)
        log.debug("holding advisory lock %s of %s (key %d)", name, settings.location, key)
        try:
            yield key
        finally:
            with con.cursor() as cur:
                cur.execute("select pg_advisory_unlock(%s)", (key,))
    finally:
        con.close()


def _acquire_advisory(con: Any, key: int, settings: Settings, name: str, wait: float) -> None:
    deadline = time.monotonic() + max(wait, 0)
    announced = False
    while True:
        with con.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(%s)", (key,))
            if cur.fetchone()[0]:
                return
        held = _advisory_holder(con, key, settings, name)
        if time.monotonic() >= deadline:
            raise LockError(f"{held}; gave up after waiting {wait:g} s")
        if not announced:
            log.info("%s; waiting up to %g s", held, wait)
            announced = True
        time.sleep(POLL_SECONDS)


def _advisory_holder(con: Any, key: int, settings: Settings, name: str) -> str:
    """Who holds the advisory lock, from its session's application_name (the lock may be gone already)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    with con.cursor() as cur:
        cur.execute(
            "select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid"
            " where l.locktype = 'advisory' and l.granted and l.objsubid = 1"
            " and l.classid = %s and l.objid = %s",
            (unsigned >> 32, unsigned & 0xFFFFFFFF),
        )
        row = cur.fetchone()
    parts = (row[0] or "").split() if row else []
    who, since = (
        (parts[2], parts[3]) if len(parts) >= 4 and parts[0] == "meterflow" else ("unknown", "unknown")
    )
    pid, _, host = who.partition("@")
    return (
        f"another meterflow run holds the {name} lock (Postgres advisory lock of {settings.location}) "
        f"since {since}, pid {pid} on {host or 'an unknown host'}"
    )
