"""The suite files: one JSON file per dataset and stage in expectations/<stage>/, read into Suite objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.errors import QualityError

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
STAGES = ("raw", "validated", "marts")
SEVERITIES = ("critical", "warning")
# Our own expectation names; every other `type` is a GX expectation.
TYPES_CHECK = "expect_columns_to_have_types"
ROWS_CHECK = "unexpected_rows"
UNIQUE_CHECK = "expect_compound_columns_to_be_unique"
# One rule over several columns, run as one query of the rows that break it for any of them (GX pays a
# fixed cost per expectation, about 27 ms on the full company, whatever the table's size):
# kwargs `columns` (not null), `value_sets` (column -> allowed values), `columns` + `min_value`/`max_value`
# (and `strict_min`/`strict_max`), with GX's meaning for each column: NULL is never out of a set or range.
NOT_NULL_CHECK = "expect_columns_values_to_not_be_null"
IN_SET_CHECK = "expect_columns_values_to_be_in_set"
BETWEEN_CHECK = "expect_columns_values_to_be_between"
# The name of the one result row of a suite that did not run.
WHOLE_SUITE = "suite_runs"


@dataclass(frozen=True)
class Expectation:
    """One declared check: a GX expectation (or one of ours) with its severity and a sentence."""

    type: str
    kwargs: dict[str, Any]
    severity: str
    description: str
    name: str | None = None
    requires: tuple[str, ...] = ()  # tables besides the suite's own that the check reads

    @property
    def check_name(self) -> str:
        kw = self.kwargs
        if self.name:
            detail = self.name
        elif "column" in kw:
            detail = kw["column"]
        elif "column_list" in kw:
            detail = ", ".join(kw["column_list"])
        elif "columns" in kw:
            detail = ", ".join(kw["columns"])
        elif "value_sets" in kw:
            detail = ", ".join(kw["value_sets"])
        else:
            return self.type
        return f"{self.type}({detail})"


@dataclass(frozen=True)
class Suite:
    """The expectations of one dataset at one stage, run against one table of the scratch database."""

    name: str
    table: str
    description: str
    expectations: tuple[Expectation, ...]

    @property
    def stage(self) -> str:
        return self.name.split(".", 1)[0]

    def whole(self, severity: str) -> Expectation:
        """The suite as one check, for the result row of a suite that did not run."""
        return Expectation(WHOLE_SUITE, {}, severity, self.description)


def load_suite(path: Path) -> Suite:
    """Read one suite file. Raises QualityError when it is malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        expectations = tuple(
            Expectation(
                type=e["type"],
                kwargs=e.get("kwargs", {}),
                severity=e["severity"],
                description=e["description"],
                name=e.get("name"),
                requires=tuple(e.get("requires", ())),
            )
            for e in data["expectations"]
        )
        suite = Suite(data["suite"], data["table"], data["description"], expectations)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QualityError(f"suite file {path} is malformed: {exc!r}") from exc
    bad = [e.check_name for e in expectations if e.severity not in SEVERITIES]
    if bad or suite.stage != path.parent.name:
        raise QualityError(f"suite file {path}: stage or severity wrong (checks {bad})")
    return suite


def load_suites(stage: str) -> list[Suite]:
    """The suites of a stage, in file-name order. Raises QualityError for an unknown stage."""
    if stage not in STAGES:
        raise QualityError(f"unknown data-quality stage {stage!r}; expected one of {STAGES}")
    return [load_suite(p) for p in sorted((EXPECTATIONS_DIR / stage).glob("*.json"))]
