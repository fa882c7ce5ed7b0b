"""`meterflow run` prints the data-quality results of its run: NULL counts never stop it, and a dataset
never delivered is said once, in words."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from etl.cli import print_quality
from etl.lake import QUALITY_COLUMNS, quality_dir
from etl.settings import Settings
from tests.test_quality import write_parquet

RUN = "run-1"
ABSENT = "not checked: no register reads delivered yet"


def result(stage: str, suite: str, check: str, **values: object) -> dict[str, object]:
    return {
        "run_id": RUN, "stage": stage, "suite": suite, "check_name": check, "description": "d",
        "severity": "warning", "rows_checked": 10, "rows_failed": 0, "passed": True,
        "checked_at": datetime(2025, 10, 1, {"raw": 1, "validated": 2, "marts": 3}[stage]),
    } | values  # fmt: skip


def test_print_quality_prints_null_counts_and_each_absence_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(home=tmp_path)
    folder = quality_dir(settings) / RUN
    write_parquet(QUALITY_COLUMNS, [
        result("raw", "raw.meters", "c1"),
        result("raw", "raw.register_reads", "suite_runs", description=ABSENT, rows_checked=0, passed=None),
    ], folder / "raw.parquet")  # fmt: skip
    write_parquet(QUALITY_COLUMNS, [
        result("validated", "validated.register_consumption", "suite_runs", description=ABSENT,
               rows_checked=0, passed=None),
        result("validated", "validated.meter_monthly", "suite_runs", rows_checked=0, rows_failed=None,
               passed=False, description="per meter per month [not built: no partition yet]"),
    ], folder / "validated.parquet")  # fmt: skip
    write_parquet(QUALITY_COLUMNS, [
        result("marts", "marts.billing_reconciliation", "suite_runs", description=ABSENT, rows_checked=0,
               passed=None),
        result("marts", "marts.mart_kpi_monthly", "c2", severity="critical", rows_failed=2, passed=False),
    ], folder / "marts.parquet")  # fmt: skip

    print_quality(settings, RUN)

    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    header = next(line for line in lines if line.startswith("┃"))
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "stage", "checks", "passed", "warnings", "critical", "not checked",
    ]  # fmt: skip
    table = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    assert table == [
        ["raw", "2", "1", "0", "0", "1"],
        ["validated", "2", "0", "1", "0", "1"],
        ["marts", "2", "0", "0", "1", "1"],
    ]
    words = " ".join(out.split())  # long lines wrap at the console's width
    not_built = "validated.meter_monthly suite_runs: per meter per month [not built: no partition yet]"
    assert f"warning: {not_built}" in words
    assert "critical: marts.mart_kpi_monthly c2: 2 of 10 rows" in words
    suites = "marts.billing_reconciliation, raw.register_reads, validated.register_consumption"
    assert words.count("not checked: ") == 1
    assert f"{ABSENT} ({suites})" in words
