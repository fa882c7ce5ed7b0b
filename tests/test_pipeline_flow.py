"""The pipeline hands each stage's result forward: VEE's rebuilt periods go to the aggregates."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from etl import pipeline
from etl.settings import Settings


def test_run_hands_the_periods_vee_rebuilt_to_the_aggregates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", threads=1, memory_limit="1GB")
    (settings.landing / "readings").mkdir(parents=True)
    (settings.landing / "readings" / "interval_reads_20250131.csv").write_text("meter_id\n", encoding="utf-8")
    handed: list[list[str]] = []

    def stage_marts(_settings: Settings, _run_id: str, vee_periods: list[str]) -> SimpleNamespace:
        handed.append(list(vee_periods))
        return SimpleNamespace(periods_rebuilt=list(vee_periods))

    monkeypatch.setattr(pipeline, "stage_ingest", lambda *_a: SimpleNamespace(changed=True))
    monkeypatch.setattr(pipeline, "stage_vee", lambda *_a: SimpleNamespace(periods_rebuilt=["2025-01"]))
    monkeypatch.setattr(pipeline, "stage_marts", stage_marts)
    monkeypatch.setattr(pipeline, "stage_publish", lambda *_a: None)
    report = pipeline.run(settings, run_id="flow")
    assert handed == [["2025-01"]]
    assert report.marts.periods_rebuilt == ["2025-01"] and report.up_to_date
