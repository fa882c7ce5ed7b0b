"""The `meterflow` command as people run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.cli import main
from etl.errors import MeterflowError
from etl.settings import Settings


@pytest.mark.parametrize("landing", ["absent", "empty folders"])
def test_run_on_a_data_home_without_landing_files_publishes_nothing(
    landing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "metreflow"  # mistyped
    if landing == "empty folders":
        (home / "landing" / "readings" / "2025").mkdir(parents=True)
    monkeypatch.setenv("METERFLOW_HOME", str(home))
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(f"error: landing/ holds no files ({home / 'landing'}, ")
    assert "`meterflow generate`" in lines[0]
    folders = sorted(p.name for p in (home / "landing").iterdir())
    assert folders == ["billing", "operations", "payments", "readings", "reference"]
    assert not [p for p in (home / "landing").rglob("*") if p.is_file()]
    assert not (home / "warehouse" / "marts.duckdb").exists()
    assert sorted(p.name for p in home.iterdir()) == ["landing"]  # no lake, state or warehouse either


def test_pipeline_run_refuses_a_landing_without_files(tmp_path: Path) -> None:
    from etl.pipeline import run

    settings = Settings(home=tmp_path, threads=1, memory_limit="512MB")
    (settings.landing / "billing").mkdir(parents=True)
    with pytest.raises(MeterflowError, match="holds no files: nothing to ingest, nothing published"):
        run(settings, run_id="empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]
