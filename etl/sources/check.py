"""`meterflow sources check FILE...`: which reader or profile takes each file, and how many of its records
would be accepted and quarantined and why, without ingesting anything."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from etl.duck import connect
from etl.errors import ContractError
from etl.ingest.files import LandingEntry
from etl.ingest.rows import check_rows, drop_temp, quarantine_rows
from etl.settings import Settings
from etl.sources import LINE_MAP, SourceFile, SourceFinder

SHOWN_REASONS = 5


@dataclass
class CheckResult:
    path: str
    reader: str | None  # NEM12, NEM13, Green Button, "profile <name>"; None when no reader takes it
    dataset: str | None = None
    records_in: int = 0
    accepted: int = 0
    quarantined: int = 0
    problem: str | None = None  # why the file would be rejected or is not taken
    reasons: list[tuple[int, str]] = field(default_factory=list)  # the first quarantined (line, reason)
    warnings: list[str] = field(default_factory=list)


def check_files(settings: Settings, paths: list[Path]) -> list[CheckResult]:
    finder = SourceFinder(settings)
    con = connect(settings, record_zone=False)
    try:
        return [_check(settings, finder, con, Path(p)) for p in paths]
    finally:
        con.close()


def _check(settings: Settings, finder: SourceFinder, con, path: Path) -> CheckResult:  # noqa: ANN001
    label = f"readings/{path.name}"
    if not path.is_file():
        return CheckResult(str(path), None, problem=f"{path} is not a regular file")
    found = finder.find(LandingEntry(label, path, None, None))
    if found is None or isinstance(found, str):
        why = found or f"{path.name}: no standard format recognised by content and no profile takes its name"
        return CheckResult(str(path), None, problem=why)
    result = CheckResult(str(path), found.reader, found.entry.dataset.name if found.entry.dataset else None)
    with tempfile.TemporaryDirectory(prefix="meterflow-check-") as tmp:
        text = Path(tmp) / "converted.csv"
        try:
            read = found.read(con, text, settings.max_file_bytes)
            result.warnings = found.warnings
            if read.error or read.text is None or found.entry.dataset is None:
                result.problem = read.error
                return result
            layout, counts = check_rows(
                con, read.text, found.entry.dataset, label, settings.read_chunk_bytes, LINE_MAP
            )
            counts = found.adopt(counts)
            quarantine_rows(con, layout)
            found.add_quarantine(con)
            result.records_in, result.accepted = counts.rows_in, counts.rows_accepted
            result.quarantined = counts.rows_quarantined
            result.reasons = [
                (int(line), str(reason))
                for line, reason in con.execute(
                    f"select line_no, reason from quarantined order by line_no limit {SHOWN_REASONS}"
                ).fetchall()
            ]
        except ContractError as exc:
            result.problem = str(exc)
        finally:
            drop_temp(con)
            SourceFile.cleanup(con)
    return result


def print_check(settings: Settings, paths: list[Path]) -> int:
    """Print the check of each file; 1 when some file would be rejected or no reader takes it."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    status = 0
    for r in check_files(settings, paths):
        if r.reader is None or r.problem:
            status = 1
            console.print(f"[bold]{r.path}[/]: {r.reader or 'not taken'}")
            console.print(f"  [red]{'rejected' if r.reader else 'skipped'}:[/] {r.problem}")
            continue
        console.print(f"[bold]{r.path}[/]: {r.reader} -> {r.dataset}")
        console.print(f"  records {r.records_in:,}: accepted {r.accepted:,}, quarantined {r.quarantined:,}")
        for line, reason in r.reasons:
            console.print(f"    line {line}: {reason}")
        for warning in r.warnings:
            console.print(f"  [yellow]warning:[/] {warning}")
    return status
