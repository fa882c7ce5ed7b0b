"""Result rows of the checks (etl.lake.QUALITY_COLUMNS), a stage's report of them, and their Parquet file.

`passed` is true or false for a check that ran, and NULL for one with nothing to check (an optional
dataset never delivered, or none of it in this run's scope): such a row has rows_checked 0, rows_failed
0 and a description that starts with "not checked: ", so `where not passed` lists failures only and
`where passed is null` lists what was not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.duck import connect
from etl.lake import QUALITY_COLUMNS, copy_to_parquet, quality_dir
from etl.quality.suites import Expectation, Suite
from etl.settings import Settings

NOT_CHECKED = "not checked: "


@dataclass
class QualityReport:
    """The results of one stage's checks in one run (rows with etl.lake.QUALITY_COLUMNS)."""

    run_id: str
    stage: str
    results: list[dict] = field(default_factory=list)

    @property
    def critical_failures(self) -> list[dict]:
        return [r for r in self.results if r["severity"] == "critical" and r["passed"] is False]

    @property
    def warnings(self) -> list[dict]:
        return [r for r in self.results if r["severity"] == "warning" and r["passed"] is False]

    @property
    def not_checked(self) -> list[dict]:
        return [r for r in self.results if r["passed"] is None]

    def summary_lines(self) -> list[str]:
        """A line per suite (checks passed, warnings, critical failures), then one per failed check and
        one per check with nothing to check."""
        lines: list[str] = []
        for suite in sorted({r["suite"] for r in self.results}):
            rows = [r for r in self.results if r["suite"] == suite]
            failed = [r for r in rows if r["passed"] is False]
            absent = [r for r in rows if r["passed"] is None]
            if len(absent) == len(rows):
                lines.extend(f"{suite}: {r['description']}" for r in absent)
                continue
            critical = sum(r["severity"] == "critical" for r in failed)
            checked = len(rows) - len(absent)
            lines.append(
                f"{suite}: {checked - len(failed)}/{checked} checks passed"
                f", {len(failed) - critical} warning(s), {critical} critical"
                + (f", {len(absent)} not checked" if absent else "")
            )
            lines.extend(f"  {r['severity'].upper()} {failure_text(r)}" for r in failed)
            for r in absent:
                lines.append(f"  NOT CHECKED {r['check_name']}: {r['description'].removeprefix(NOT_CHECKED)}")
        return lines


def failure_text(row: dict) -> str:
    """A failed check in words: its name, then its counts when it has them, and its description."""
    if row["rows_failed"] is None:
        return f"{row['check_name']}: {row['description']}"
    return (
        f"{row['check_name']}: {row['rows_failed']} of {row['rows_checked']} rows failed"
        f" ({row['description']})"
    )


def result_row(
    stamp: dict[str, Any],
    suite: Suite,
    exp: Expectation,
    rows_checked: int | None,
    rows_failed: int | None,
    passed: bool | None,
    note: str | None = None,
) -> dict[str, Any]:
    """A result row (`note`, when given, is added to the check's description)."""
    return {
        "run_id": stamp["run_id"],
        "stage": stamp["stage"],
        "suite": suite.name,
        "check_name": exp.check_name,
        "description": exp.description if note is None else f"{exp.description} [{note}]",
        "severity": exp.severity,
        "rows_checked": rows_checked,
        "rows_failed": rows_failed,
        "passed": passed,
        "checked_at": stamp["checked_at"],
    }


def not_checked_row(stamp: dict[str, Any], suite: Suite, exp: Expectation, reason: str) -> dict[str, Any]:
    """The result row of a check with nothing to check: no rows looked at, none failed, `passed` NULL."""
    return result_row(stamp, suite, exp, 0, 0, None) | {"description": NOT_CHECKED + reason}


def write_results(settings: Settings, report: QualityReport) -> Path:
    """Write the results to lake/quality/<run_id>/<stage>.parquet atomically."""
    dest = quality_dir(settings) / report.run_id / f"{report.stage}.parquet"
    con = connect(settings)
    try:
        cols = ", ".join(f"{n} {t}" for n, t in QUALITY_COLUMNS.items())
        con.execute(f"create table results ({cols})")
        if report.results:
            marks = ", ".join("?" for _ in QUALITY_COLUMNS)
            con.executemany(
                f"insert into results values ({marks})",
                [[r[c] for c in QUALITY_COLUMNS] for r in report.results],
            )
        copy_to_parquet(con, "select * from results", dest, settings)
    finally:
        con.close()
    return dest
