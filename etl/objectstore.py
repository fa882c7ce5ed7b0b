"""A data home on S3 (`s3://bucket/prefix`): the object store is the system of record, a run works on a
local working copy and synchronises it with pyarrow's S3 file system around every stage.

    s3://bucket/prefix/landing/...                     upstream files (dropped there by any S3 client)
    s3://bucket/prefix/lake/...                        the lake, as under a local home (etl/lake.py)
    s3://bucket/prefix/warehouse/marts.duckdb          the published marts
    s3://bucket/prefix/state/published.json            which aggregates the published marts were built from

DuckDB reads and writes local files only here (its httpfs extension is not installed), so every stage runs
as on a local home, in the working copy `<METERFLOW_WORK_DIR>/<bucket>/<prefix>` (default under
`$XDG_CACHE_HOME/meterflow/s3` or `~/.cache/meterflow/s3`), between a pull and a push, both under the data
home's `objectstore` lock:

- **pull** makes the working copy's lake, marts and marker equal to the object store (objects whose size
  or modification time differ from what the last sync recorded are downloaded, whole, to a scratch file
  and renamed into place; files the store no longer holds are deleted) and brings new landing objects in.
  A landing file put into the working copy itself is kept and pushed with the stage's results.
- **push** uploads what the stage changed, in commit order: landing files, then the lake's data objects
  (raw, quarantine, validated, aggregates, quality results), then the objects that make them count
  (manifest rows and the `_watermark.json`, `_state.json` and `_sources.json` files), then the marts file
  (uploaded under a scratch key and copied into place by the server: readers get the old object or the
  new one), then `published.json`, then deletions, the commit objects first. A single PUT or a completed
  multipart upload is atomic in S3, so a push that stops half-way leaves whole objects only; data objects
  that no manifest row names are ignored by every reader (etl/lake.py) and deleted by the next ingestion,
  as on a local home.

A stage that fails pushes nothing: the store keeps what the last successful stage left, and the retry
starts from there. An S3 error raises ObjectStoreError naming the object, so an Airflow task fails and is
retried; pushing the same working copy again uploads the same objects (a retried stage converges).

The connection: METERFLOW_S3_ENDPOINT (or AWS_ENDPOINT_URL), `http://host:port` for a local server such as
SeaweedFS; the keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (else pyarrow's usual AWS chain); the
region from AWS_REGION (default us-east-1). The bucket is created at the first push when it is missing.
With more than one machine on one S3 home, set METERFLOW_LOCK_URL (etl/lock.py): a file lock guards only
the working copies of one host.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlparse

from etl.errors import MeterflowError
from etl.settings import Settings, s3_uri

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ENDPOINT_ENVS = ("METERFLOW_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
LOCK = "objectstore"
LOCK_WAIT = 3600.0  # seconds: a stage waits for another host's stage of the same home
READ_LOCK_WAIT = 600.0
RECORD = "objectstore.json"  # in the working copy's state/: what the last sync saw of each object
CHUNK = 8 * 1024 * 1024
SCRATCH = "warehouse/.building/"  # scratch keys of marts uploads, copied into place

# What is synchronised, as paths relative to the home; everything else in the working copy (locks, Data
# Docs, DuckDB's spill files, lake/_tmp) belongs to the host.
MARTS = "warehouse/marts.duckdb"
MARKER = "state/published.json"
READ_AREAS = (MARTS, MARKER)


class ObjectStoreError(MeterflowError):
    """An S3 request failed; the message names the object and what was being done."""


def synchronised(rel: str) -> bool:
    """True for a path (relative to the home) that lives in the object store."""
    if rel.startswith("landing/"):
        return True
    if rel.startswith("lake/"):
        return not rel.startswith("lake/_tmp/")
    return rel in (MARTS, MARKER)


# Files that make the data beside them count: watermarks, the key index's state, the list of snapshot files a
# saved current table came from (etl/current.py). Each goes up after the data it vouches for.
COMMIT_NAMES = ("/_watermark.json", "/_state.json", "/_sources.json")


def commit_rank(rel: str) -> int:
    """The order of uploads: inputs, data objects, the objects that make them count, marts, marker."""
    if rel.startswith("landing/"):
        return 0
    if rel == MARTS:
        return 3
    if rel == MARKER:
        return 4
    if rel.startswith("lake/manifest/") or rel.endswith(COMMIT_NAMES):
        return 2
    return 1


def _wanted(rel: str, areas: Iterable[str] | None) -> bool:
    return synchronised(rel) and (areas is None or any(rel.startswith(a) for a in areas))


# --- connection -----------------------------------------------------------------------------------------


@dataclass
class Store:
    """A connection to the bucket and prefix of one S3 home."""

    uri: str
    fs: Any = field(repr=False)

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").split("/", 1)[0]

    @property
    def base(self) -> str:
        """`bucket/prefix` as pyarrow names it."""
        return self.uri.removeprefix("s3://")

    def key(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def name(self, rel: str) -> str:
        return f"{self.uri}/{rel}"


def connect(uri: str) -> Store:
    """A pyarrow S3 file system for `uri`, configured from the environment (see the module docstring)."""
    from pyarrow import fs

    options: dict[str, Any] = {
        "allow_bucket_creation": True,
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "connect_timeout": 10,
        "request_timeout": 60,
    }
    endpoint = next((os.environ[e] for e in ENDPOINT_ENVS if os.environ.get(e)), None)
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parsed.netloc
        options["scheme"] = parsed.scheme or "https"
    key_id, key = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and key:
        options.update(access_key=key_id, secret_key=key)
    return Store(uri, fs.S3FileSystem(**options))


def store_of(settings: Settings) -> Store:
    if settings.remote is None:
        raise MeterflowError(f"{settings.home} is a local data home, not an S3 one")
    return connect(settings.remote)


def _failed(action: str, what: str, exc: Exception) -> ObjectStoreError:
    return ObjectStoreError(f"{action} {what} failed: {exc}")


def list_objects(store: Store) -> dict[str, tuple[int, int]]:
    """Every object under the home's prefix: path relative to the home -> (size, modification time in ns)."""
    from pyarrow import fs

    try:
        infos = store.fs.get_file_info(fs.FileSelector(store.base, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise _failed("listing", store.uri, exc) from exc
    found = {}
    for info in infos:
        if info.type == fs.FileType.File:
            found[info.path.removeprefix(store.base + "/")] = (int(info.size), int(info.mtime_ns or 0))
    return found


def _remote_stat(store: Store, rel: str) -> tuple[int, int]:
    try:
        info = store.fs.get_file_info(store.key(rel))
    except OSError as exc:
        raise _failed("reading the size of", store.name(rel), exc) from exc
    return int(info.size or 0), int(info.mtime_ns or 0)


# --- the working copy's record of the last sync ----------------------------------------------------------


def _record_path(settings: Settings) -> Path:
    return settings.state / RECORD


def _load_record(settings: Settings) -> dict[str, list[int]]:
    """rel -> [remote size, remote mtime_ns, local size, local mtime_ns] as of the last sync."""
    path = _record_path(settings)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # a damaged record only costs downloads
        return {}
    return data if isinstance(data, dict) else {}


def _save_record(settings: Settings, record: dict[str, list[int]]) -> None:
    from etl.lake import write_json_atomic

    write_json_atomic(_record_path(settings), dict(sorted(record.items())))


def _local_stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def local_files(settings: Settings) -> dict[str, tuple[int, int]]:
    """The working copy's synchronised files: rel -> (size, mtime_ns)."""
    found = {}
    for top in ("landing", "lake", "warehouse", "state"):
        base = settings.home / top
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            rel = path.relative_to(settings.home).as_posix()
            if synchronised(rel) and path.is_file() and not path.name.startswith("."):
                found[rel] = _local_stat(path)
    return found


# --- pull and push --------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    downloaded: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # local files (pull) or objects (push)


def _download(store: Store, rel: str, dest: Path) -> None:
    from etl.lake import scratch_name

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{scratch_name('.part')}")
    try:
        with store.fs.open_input_stream(store.key(rel)) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _failed("downloading", store.name(rel), exc) from exc


def pull(settings: Settings, areas: Iterable[str] | None = None) -> SyncReport:
    """Bring the working copy up to the object store (only paths starting with one of `areas`, when given).

    Call it holding the `objectstore` lock (synced and refresh do). Raises ObjectStoreError.
    """
    store = store_of(settings)
    chosen = tuple(areas) if areas is not None else None
    remote = list_objects(store)
    record = _load_record(settings)
    local = local_files(settings)
    report = SyncReport()
    try:
        for rel, (size, mtime) in sorted(remote.items()):
            if not _wanted(rel, chosen):
                continue
            seen = record.get(rel)
            if seen and seen[:2] == [size, mtime] and local.get(rel) == tuple(seen[2:]):
                continue
            dest = settings.home / rel
            _download(store, rel, dest)
            record[rel] = [size, mtime, *_local_stat(dest)]
            report.downloaded.append(rel)
        for rel in sorted(set(local) | set(record)):
            if rel in remote or not _wanted(rel, chosen):
                continue
            if rel.startswith("landing/") and rel not in record:
                continue  # put into the working copy by hand: the next push uploads it
            if rel in local:
                (settings.home / rel).unlink(missing_ok=True)
                report.deleted.append(rel)
            record.pop(rel, None)
    finally:
        _save_record(settings, record)
    if report.downloaded or report.deleted:
        log.info(
            "pulled %s: %d object(s) downloaded, %d local file(s) removed",
            store.uri,
            len(report.downloaded),
            len(report.deleted),
        )
    return report


def _upload(store: Store, path: Path, key: str, what: str) -> None:
    try:
        with open(path, "rb") as src, store.fs.open_output_stream(key) as out:
            shutil.copyfileobj(src, out, CHUNK)
    except OSError as exc:
        raise _failed("uploading", what, exc) from exc


def _ensure_bucket(store: Store) -> None:
    from pyarrow import fs

    try:
        if store.fs.get_file_info(store.bucket).type == fs.FileType.NotFound:
            store.fs.create_dir(store.bucket)
    except OSError as exc:
        raise _failed("creating the bucket of", store.uri, exc) from exc


def _remove_scratch(store: Store) -> None:
    """Delete marts uploads a killed push left under their scratch keys (only pushes write them, and they
    hold the home's objectstore lock)."""
    from pyarrow import fs

    try:
        infos = store.fs.get_file_info(
            fs.FileSelector(store.key(SCRATCH.rstrip("/")), recursive=True, allow_not_found=True)
        )
        for info in infos:
            if info.type == fs.FileType.File:
                store.fs.delete_file(info.path)
    except OSError as exc:
        raise _failed("removing scratch objects of", store.uri, exc) from exc


def push(settings: Settings) -> SyncReport:
    """Upload what changed in the working copy since the last sync, in commit order, then delete the
    objects of files the stage deleted. Call it holding the `objectstore` lock. Raises ObjectStoreError."""
    from etl.lake import scratch_name

    store = store_of(settings)
    record = _load_record(settings)
    local = local_files(settings)
    changed = [rel for rel, st in local.items() if rel not in record or tuple(record[rel][2:]) != st]
    gone = [rel for rel in record if rel not in local]
    report = SyncReport()
    if not changed and not gone:
        return report
    _ensure_bucket(store)
    _remove_scratch(store)
    try:
        for rel in sorted(changed, key=lambda r: (commit_rank(r), r)):
            path = settings.home / rel
            stat = _local_stat(path)
            if rel == MARTS:  # readers open this object directly: it changes in one server-side copy
                scratch = store.key(SCRATCH + scratch_name(".duckdb"))
                _upload(store, path, scratch, store.name(rel))
                try:
                    store.fs.move(scratch, store.key(rel))
                except OSError as exc:
                    raise _failed("copying into place", store.name(rel), exc) from exc
            else:
                _upload(store, path, store.key(rel), store.name(rel))
            size, mtime = _remote_stat(store, rel)
            if size != stat[0]:
                raise ObjectStoreError(f"uploading {store.name(rel)}: {size} bytes stored of {stat[0]}")
            record[rel] = [size, mtime, *stat]
            report.uploaded.append(rel)
        for rel in sorted(gone, key=lambda r: (-commit_rank(r), r)):
            try:
                store.fs.delete_file(store.key(rel))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _failed("deleting", store.name(rel), exc) from exc
            record.pop(rel, None)
            report.deleted.append(rel)
    finally:
        _save_record(settings, record)
    log.info("pushed to %s: %d uploaded, %d deleted", store.uri, len(report.uploaded), len(report.deleted))
    return report


@contextmanager
def synced(settings: Settings) -> Iterator[None]:
    """Run a stage on the working copy of an S3 home: pull, the stage, push, under the home's objectstore
    lock. A local home runs the stage as it is. A stage that raises pushes nothing."""
    if settings.remote is None:
        yield
        return
    from etl.lock import data_home_lock

    with data_home_lock(settings, LOCK, wait=LOCK_WAIT):
        pull(settings)
        yield
        push(settings)


def on_working_copy(stage: Callable[Concatenate[Settings, P], R]) -> Callable[Concatenate[Settings, P], R]:
    """A pipeline stage (its first argument the settings) run `synced`: on an S3 home between a pull and
    a push of its working copy."""

    @functools.wraps(stage)
    def run(settings: Settings, *args: P.args, **kwargs: P.kwargs) -> R:
        with synced(settings):
            return stage(settings, *args, **kwargs)

    return run


def refresh(settings: Settings, areas: Iterable[str] | None = None) -> None:
    """Pull (the given areas of) an S3 home into its working copy, under its objectstore lock; nothing for
    a local home. `meterflow sql`, `kpi` and `report` pull the marts so; `meterflow run` the landing files."""
    if settings.remote is None:
        return
    from etl.lock import data_home_lock

    with data_home_lock(settings, LOCK, wait=READ_LOCK_WAIT):
        pull(settings, areas)


# --- helpers for putting files in and taking them out ---------------------------------------------------


def upload_tree(folder: Path, uri: str) -> list[str]:
    """Upload every file under `folder` to `uri`/<path relative to folder> (e.g. a landing folder to
    `s3://bucket/prefix/landing`); returns the keys written. Raises ObjectStoreError."""
    target = s3_uri(uri)
    if target is None:
        raise MeterflowError(f"{uri} is not an s3:// URI")
    store = connect(target)
    _ensure_bucket(store)
    written = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        _upload(store, path, store.key(rel), store.name(rel))
        written.append(store.name(rel))
    return written


def download(uri: str, rel: str, dest: Path) -> Path:
    """Download object `uri`/`rel` to `dest` (whole, by rename). Raises ObjectStoreError."""
    target = s3_uri(uri)
    if target is None:
        raise MeterflowError(f"{uri} is not an s3:// URI")
    _download(connect(target), rel, dest)
    return dest


def exists(uri: str, rel: str) -> bool:
    """True when object `uri`/`rel` exists. Raises ObjectStoreError."""
    from pyarrow import fs

    store = connect(uri)
    try:
        return bool(store.fs.get_file_info(store.key(rel)).type == fs.FileType.File)
    except OSError as exc:
        raise _failed("looking for", store.name(rel), exc) from exc
