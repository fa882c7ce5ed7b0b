"""The pipeline's stages, as the CLI and the Airflow DAGs both call them.

    ingest -> check raw -> VEE -> check validated -> monthly aggregates -> build marts file
    -> check marts -> swap the new marts file in

Each stage is idempotent: it works from the lake's watermarks, so a retried or re-run task redoes exactly
what is still to do. Data flows one way: VEE returns the months it rebuilt and they are handed forward to
the aggregates (here and through XCom in the DAG); VEE also records them per run in its watermark, from
which the aggregates take the months of any VEE run they have not caught up with (docs/architecture.md).

On an S3 home (etl/objectstore.py) each stage works in the local working copy, between a pull and a push
(@on_working_copy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.errors import MeterflowError, PublishError
from etl.lake import (
    QUALITY_COLUMNS,
    copy_to_parquet,
    file_stem,
    layer_watermark,
    partition_periods,
    quality_dir,
    write_json_atomic,
)
from etl.lock import data_home_lock
from etl.objectstore import on_working_copy, refresh
from etl.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class RunReport:
    """What one `meterflow run` did, stage by stage."""

    run_id: str
    ingest: Any = None
    vee: Any = None
    marts: Any = None
    quality: list[Any] = field(default_factory=list)
    published: Path | None = None
    up_to_date: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def new_run_id(prefix: str = "cli") -> str:
    """A run id for runs started outside Airflow: `<prefix>__<UTC time>`."""
    return f"{prefix}__{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


def _published_marker(settings: Settings) -> Path:
    return settings.state / "published.json"


def _aggregates_state(settings: Settings) -> str | None:
    """The aggregates' watermark as stored, or None before the first build."""
    mark = layer_watermark(settings, "aggregates")
    return mark.read_text(encoding="utf-8") if mark.exists() else None


def marts_are_current(settings: Settings) -> bool:
    """True when the published marts were built from the aggregates as they stand now."""
    import json

    marker = _published_marker(settings)
    if not settings.marts_path.exists() or not marker.exists():
        return False
    published = json.loads(marker.read_text(encoding="utf-8"))
    return published.get("inputs") == _aggregates_state(settings)


def record_ingest(settings: Settings, run_id: str, report: Any) -> None:
    """Record the ingestion's accounting as data-quality rows of stage `ingest`, one per landing file."""
    from etl.duck import connect

    rows = []
    checked_at = datetime.now(UTC).replace(tzinfo=None)
    for f in report.files:
        if f.status == "DUPLICATE":
            continue
        conserved = f.rows_in == f.rows_accepted + f.rows_quarantined
        rows.append(
            (
                run_id,
                "ingest",
                f"ingest.{f.dataset or 'unknown'}",
                f"file_accepted({f.source_file})",
                f"{f.status}: {f.reason}"
                if f.reason
                else f"{f.status}: {f.rows_accepted} of {f.rows_in} rows accepted, "
                f"{f.rows_quarantined} quarantined",
                "warning",
                f.rows_in,
                f.rows_quarantined if f.status == "INGESTED" and conserved else max(f.rows_in, 1),
                f.status == "INGESTED" and f.rows_quarantined == 0 and conserved,
                checked_at,
            )
        )
    if not rows:
        return
    con = connect(settings)
    cols = ", ".join(f"{n} {t}" for n, t in QUALITY_COLUMNS.items())
    con.execute(f"create table results ({cols})")
    con.executemany(f"insert into results values ({', '.join('?' * len(QUALITY_COLUMNS))})", rows)
    copy_to_parquet(con, "select * from results", quality_dir(settings) / run_id / "ingest.parquet", settings)
    con.close()


def _log_quality(report: Any) -> None:
    """A few lines per suite in the log (the Airflow task log, or the CLI with --verbose)."""
    for line in report.summary_lines():
        log.log(logging.WARNING if line.lstrip().startswith("WARNING") else logging.INFO, "%s", line)


@on_working_copy
def stage_ingest(settings: Settings, run_id: str, folders: Sequence[str] | None = None) -> Any:
    """Ingest new landing files, record their accounting, and check the raw layer.

    Raises QualityError when a critical raw expectation fails.
    """
    from etl import quality
    from etl.ingest import run as ingest

    report = ingest.ingest(settings, run_id, folders=folders)
    record_ingest(settings, run_id, report)
    periods = sorted(partition_periods(p for f in report.files for p in f.partitions))
    run_files = [file_stem(f.ingest_seq, f.file_hash) for f in report.files if f.ingest_seq and f.file_hash]
    if report.changed:
        _log_quality(quality.check(settings, run_id, "raw", periods=periods, run_files=run_files))
    return report


@on_working_copy
def stage_vee(settings: Settings, run_id: str) -> Any:
    """Validate, estimate and edit readings above VEE's watermark, then check the validated layer."""
    from etl import quality
    from etl.vee import run as vee

    with data_home_lock(settings, "vee", wait=3600):
        report = vee.run_vee(settings, run_id)
    if report.periods_rebuilt:
        _log_quality(quality.check(settings, run_id, "validated", periods=report.periods_rebuilt))
    return report


@on_working_copy
def stage_marts(settings: Settings, run_id: str, vee_periods: Iterable[str] = ()) -> Any:
    """Rebuild the monthly aggregates of every period that new data or VEE (`vee_periods`) touched."""
    from etl.marts import aggregates as marts

    with data_home_lock(settings, "marts", wait=3600):
        return marts.build(settings, run_id, vee_periods=vee_periods)


@on_working_copy
def stage_publish(settings: Settings, run_id: str, force: bool = False) -> Path | None:
    """Build a new marts file, check it, and swap it in; None when the published marts are current.

    Raises QualityError (critical marts check) or PublishError; the published file then stays as it was.
    """
    from etl import quality
    from etl.marts import publish

    with data_home_lock(settings, "publish", wait=3600):
        if not force and marts_are_current(settings):
            log.info("published marts are current; nothing to publish")
            return None
        for stale in publish.building_dir(settings).glob("*"):  # left by a run killed mid-build
            stale.unlink()
        new_file = publish.build_file(settings, run_id)
        try:
            _log_quality(quality.check(settings, run_id, "marts", database=new_file))
            published = publish.swap_in(settings, new_file, run_id)
        except MeterflowError:
            new_file.unlink(missing_ok=True)
            raise
        except Exception as exc:  # a bug in a check must not leave a half-built file behind
            new_file.unlink(missing_ok=True)
            raise PublishError(f"publishing {settings.marts_path} failed: {exc}") from exc
        write_json_atomic(
            _published_marker(settings), {"run_id": run_id, "inputs": _aggregates_state(settings)}, indent=2
        )
        return published


def run(settings: Settings, run_id: str | None = None, progress: Progress | None = None) -> RunReport:
    """Ingest, validate, build, check and publish: CONTRACT.md §7's `meterflow run`.

    Raises MeterflowError when landing/ holds no file (an empty or mistyped data home: nothing is
    written), LockError when another run holds the data home, QualityError or PublishError when it could
    not publish (the previously published marts stay).
    """
    import time

    refresh(settings, ["landing/"])  # an S3 home: its landing files into the working copy
    if not any(path.is_file() for path in settings.landing.rglob("*")):
        raise MeterflowError(f"{settings.landing} holds no files: nothing to ingest, nothing published")
    run_id = run_id or new_run_id()
    report = RunReport(run_id=run_id)
    say = progress or (lambda _msg: None)
    with data_home_lock(settings, "run", wait=0):
        for name, fn in (
            ("ingest", lambda: stage_ingest(settings, run_id)),
            ("vee", lambda: stage_vee(settings, run_id)),
            ("marts", lambda: stage_marts(settings, run_id, report.vee.periods_rebuilt)),
            ("publish", lambda: stage_publish(settings, run_id)),
        ):
            say(name)
            start = time.perf_counter()
            result = fn()
            report.seconds[name] = time.perf_counter() - start
            if name == "publish":
                report.published = result
                report.up_to_date = result is None
            else:
                setattr(report, name, result)
    return report
