"""One stage's data-quality check: prepare the tables, validate them with GX, record the results.

`check(settings, run_id, stage)` builds a scratch DuckDB file under `<home>/tmp/quality/` (`prepare`),
runs each suite of expectations/<stage>/ as one GX validation of its table (`validate`), writes the
results to `lake/quality/<run_id>/<stage>.parquet` first (`results`), then the GX Data Docs to
`<home>/docs/gx/<stage>/` (`datadocs`), then raises QualityError on a critical failure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from etl.errors import QualityError
from etl.lake import remove_abandoned, scratch_name
from etl.quality.datadocs import build_data_docs
from etl.quality.prepare import prepare
from etl.quality.results import QualityReport, failure_text, write_results
from etl.quality.suites import load_suites
from etl.quality.validate import validate
from etl.settings import Settings

log = logging.getLogger(__name__)


def check(
    settings: Settings,
    run_id: str,
    stage: str,
    database: Path | None = None,
    periods: Sequence[str] | None = None,
    run_files: Collection[str] | None = None,
) -> QualityReport:
    """Run a stage's suites and record the results.

    `periods` ('YYYY-MM') limits raw and validated checks to those partitions (raw: to this run's files
    in them, and this run's reference snapshots); `database` is the new marts file for stage "marts".
    `run_files`, the `<seq>_<sha256>` stems of the files this run ingested or rejected, spares the
    scoped raw check a read of every manifest file to find them.
    Raises QualityError naming suite, check and failing count when a critical check fails (the results
    are written first), or when the checks cannot run.
    """
    suites = load_suites(stage)
    settings = replace(settings, home=settings.home.absolute())
    scratch = _scratch_path(settings, run_id, stage)
    try:
        tables = prepare(settings, scratch, run_id, stage, database, periods, suites, run_files)
        report, context = validate(settings, scratch, run_id, stage, suites, tables)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".wal")):
            leftover.unlink(missing_ok=True)
    write_results(settings, report)
    build_data_docs(settings, stage, context)
    for line in report.summary_lines():
        log.info("%s", line)
    if report.critical_failures:
        raise QualityError(
            f"data quality {stage} (run {run_id}): critical check(s) failed: "
            + "; ".join(f"{r['suite']}: {failure_text(r)}" for r in report.critical_failures)
        )
    return report


def _scratch_path(settings: Settings, run_id: str, stage: str) -> Path:
    """A new scratch database path; unique, as checks of one run id may run side by side."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    path = settings.home / "tmp" / "quality" / scratch_name(".duckdb", label=f"{safe}-{stage}-")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(path.parent)  # the scratch of checks killed mid-way
    return path
