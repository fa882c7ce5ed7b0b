"""The ingestion task's log: one line for the files taken before, however many; a table for the rest;
DUPLICATE only for the same bytes under another name."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from etl.ingest.run import ingest
from etl.settings import Settings

HEADER = "meter_id,interval_start,interval_minutes,kwh,quality\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path / "home", threads=1, memory_limit="512MB")
    folder = s.landing / "readings"
    folder.mkdir(parents=True)
    for day in range(1, 4):
        (folder / f"interval_reads_202509{day:02}.csv").write_text(
            HEADER + f"M1,2025-09-{day:02}T00:00:00,30,1.5,A\nM1,2025-09-{day:02}T00:30:00,30,-2,A\n",
            encoding="utf-8",
        )
    return s


def ingest_log(settings: Settings, run_id: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="etl.ingest.run"):
        ingest(settings, run_id)
    return [
        line for r in caplog.records if r.name == "etl.ingest.run" for line in r.getMessage().splitlines()
    ]


def test_a_first_run_logs_each_file_and_a_table(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    lines = ingest_log(settings, "run-1", caplog)
    assert [line.split()[0] for line in lines[:3]] == ["INGESTED"] * 3
    table = lines[lines.index("ingestion run-1:") + 1 :]
    assert (
        table[0].split()
        == "dataset new files duplicates rejected skipped rows in accepted quarantined".split()
    )
    # three files of two rows each; the contract quarantines each file's negative reading
    assert table[1].split() == ["interval_reads", "3", "0", "0", "0", "6", "3", "3"]
    assert not any("{" in line for line in lines)


def test_a_run_with_nothing_new_logs_one_line(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    ingest_log(settings, "run-1", caplog)
    lines = ingest_log(settings, "run-2", caplog)
    assert lines == [
        "ingestion run-2:",
        "3 landing files were ingested before, unchanged: nothing to do",
        "no new landing file",
    ]


def test_duplicate_means_the_same_bytes_under_another_name(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ingest_log(settings, "run-1", caplog)
    folder = settings.landing / "readings"
    shutil.copy(folder / "interval_reads_20250902.csv", folder / "interval_reads_20250902_again.csv")
    lines = ingest_log(settings, "run-2", caplog)
    duplicates = [line for line in lines if "DUPLICATE" in line]
    assert duplicates == [
        "DUPLICATE readings/interval_reads_20250902_again.csv: readings/interval_reads_20250902_again.csv "
        "has the same bytes as readings/interval_reads_20250902.csv, which was ingested before "
        "(ingest_seq 2): nothing to do"
    ]
    assert "3 landing files were ingested before, unchanged: nothing to do" in lines
    assert lines[-1].split() == ["interval_reads", "0", "1", "0", "0", "0", "0", "0"]
