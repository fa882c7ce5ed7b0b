"""The lint configuration holds: the rules the house style asks of DAG files, and hooks that can run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEAVY_IMPORTS = """\
import duckdb
import pyarrow.parquet as pq
from great_expectations import core
import pandas as pd
from matplotlib import pyplot


def task() -> None:
    import duckdb as inside_a_task

    print(duckdb, pq, core, pd, pyplot, inside_a_task)
"""


def _banned_imports(path: str) -> list[str]:
    """Lines of TID253 (banned module-level import) that ruff reports for HEAVY_IMPORTS saved as `path`."""
    done = subprocess.run(
        [
            BIN / "ruff",
            "check",
            "--no-cache",
            "--select",
            "TID253",
            "--output-format",
            "concise",
            "--stdin-filename",
            path,
            "-",
        ],
        input=HEAVY_IMPORTS,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return [line for line in done.stdout.splitlines() if "TID253" in line]


def test_dag_files_may_not_import_heavy_libraries_at_module_level() -> None:
    found = _banned_imports("dags/probe.py")
    assert [line.split("`")[1] for line in found] == [
        "duckdb",
        "pyarrow",
        "great_expectations",
        "pandas",
        "matplotlib",
    ]  # and not the import inside the task


@pytest.mark.parametrize("path", ["etl/probe.py", "tests/probe.py", "bench/probe.py"])
def test_other_modules_may(path: str) -> None:
    assert _banned_imports(path) == []


def test_pre_commit_hooks_run_the_tools_of_the_virtual_environment() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = config["repos"][0]["hooks"]
    assert [h["id"] for h in hooks] == ["ruff-check", "ruff-format", "sqlfluff-lint", "mypy"]
    for hook in hooks:
        tool = hook["entry"].split()[0]
        assert tool.startswith(".venv/bin/"), hook
        assert (ROOT / tool).exists(), hook
        assert hook["language"] == "system"
