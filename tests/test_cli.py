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


# Each optional input a company may not deliver, and the datasets whose files it leaves out.
OPTIONAL = {
    "register_reads": ("readings/register_reads_",),
    "payments": ("payments/",),
    "plans": ("reference/plans_",),
    "network": ("reference/network_",),
    "tariffs": ("reference/tariffs_",),
    "operations": ("operations/",),
    "regions": ("reference/regions_",),
}


@pytest.fixture(scope="module")
def small_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated company of three months, never run: each test copies what it wants of it."""
    from etl.generate import generate

    home = tmp_path_factory.mktemp("small-company")
    generate(home, customers=400, start="2025-07", end="2025-09", seed=7, fault_rate=0.0, truth=False)
    return home


@pytest.mark.parametrize("left_out", list(OPTIONAL))
def test_a_company_without_an_optional_dataset_publishes_and_says_what_was_not_checked(
    small_company: Path,
    left_out: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    import duckdb

    home = tmp_path / "home"
    for path in (small_company / "landing").rglob("*"):
        rel = path.relative_to(small_company / "landing").as_posix()
        if path.is_file() and not rel.startswith(OPTIONAL[left_out]):
            (home / "landing" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, home / "landing" / rel)
    monkeypatch.setenv("METERFLOW_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert (home / "warehouse" / "marts.duckdb").exists()
    words = {
        "register_reads": "no register reads delivered yet",
        "payments": "no payments delivered yet",
        "plans": "no plans delivered yet",
        "network": "no network delivered yet",
        "tariffs": "no tariffs delivered yet",
        "operations": "no service requests delivered yet",
        "regions": "no regions delivered yet",
    }[left_out]
    said = [line for line in out.splitlines() if words in line]
    assert len(said) == 1, out  # once, however many checks it concerns
    con = duckdb.connect(str(home / "warehouse" / "marts.duckdb"), read_only=True)
    rows = con.execute(
        "select count(*), count(*) filter (where rows_failed = 0 and rows_checked = 0) "
        "from mart_data_quality where passed is null and description like ?",
        [f"%{words}%"],
    ).fetchone()
    con.close()
    assert rows[0] >= 1 and rows[0] == rows[1]


# --- what a newcomer reads --------------------------------------------------------------------------


def test_meterflow_without_a_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: meterflow")
    assert "examples:" in out.out and "report" in out.out
    assert out.err == ""


def test_a_report_of_a_missing_period_says_which_periods_exist(
    fixture_marts_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the fixture marts hold the months of 2024-01 .. 2025-09: 12 + 9 periods
    assert main(["--home", str(fixture_marts_home), "report", "--period", "1999-01"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "no company figures for period 1999-01 in the published marts" in out
    assert "they hold 2024-01 to 2025-09 (21 periods)" in out


def test_a_long_error_is_not_cut_mid_word(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / ("a-data-home-with-a-rather-long-name-" * 3)
    assert main(["--home", str(home), "kpi"]) == 1
    out = capsys.readouterr().out
    # one line, as long as it is: the terminal wraps it between words, not the program inside a path
    assert out.count("\n") == 1
    assert f"no published marts at {home / 'warehouse' / 'marts.duckdb'}; run `meterflow run` first" in out


def test_a_rejected_header_names_the_unexpected_column_and_the_contract_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readings = tmp_path / "landing" / "readings"
    readings.mkdir(parents=True)
    (readings / "interval_reads_202509.csv").write_text(
        "meter_id,interval_start,interval_minute,kwh,quality,note\nM1,2025-09-01T00:00:00,30,1.5,A,x\n",
        encoding="utf-8",
    )
    assert main(["--home", str(tmp_path), "ingest"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "rejected: readings/interval_reads_202509.csv: the header (line 1) lacks the required column(s) "
        "interval_minutes; it has the unexpected column 'interval_minute': did you mean "
        "'interval_minutes'?; the unexpected column 'note'"
    ) in out
