"""Running GX: each suite as one validation of its prepared table, and a result row per declared check.

One ephemeral GX context and one SQL datasource over the scratch file per check; GX computes every count
inside DuckDB. A suite whose table is absent gets one row saying why, as does a check whose other tables
are: "not checked" (passed NULL) when there is nothing to check, failed when a table is not built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.errors import QualityError
from etl.quality import gx_duckdb
from etl.quality.datadocs import docs_dir
from etl.quality.prepare import COLUMNS_TABLE, KEYS_TABLE, NotBuilt, NotChecked, Tables
from etl.quality.results import QualityReport, not_checked_row, result_row
from etl.quality.suites import (
    BETWEEN_CHECK,
    IN_SET_CHECK,
    NOT_NULL_CHECK,
    ROWS_CHECK,
    TYPES_CHECK,
    UNIQUE_CHECK,
    Expectation,
    Suite,
)
from etl.settings import Settings

# Counts, and a few failing values for the Data Docs (each example list is one more query per check).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}


@dataclass(frozen=True)
class _Planned:
    """A declared check as GX will run it, with the number of rows (or columns) it looks at."""

    suite: Suite
    exp: Expectation
    gx_type: str
    gx_kwargs: dict[str, Any]
    rows_checked: int | None


def validate(
    settings: Settings,
    scratch: Path,
    run_id: str,
    stage: str,
    suites: Sequence[Suite],
    tables: Tables,
) -> tuple[QualityReport, Any]:
    """Run every runnable suite as one GX validation of its table; record why the others did not run.

    Returns the report and the GX context (for the Data Docs). Raises QualityError when the scratch file
    cannot be opened or a suite names an unknown expectation type.
    """
    gx = gx_duckdb.import_gx()
    context = gx_duckdb.new_context(docs_dir(settings, stage))
    report = QualityReport(run_id, stage)
    stamp = {"run_id": run_id, "stage": stage, "checked_at": datetime.now(UTC).replace(tzinfo=None)}
    datasource = gx_duckdb.add_duckdb_datasource(context, "scratch", scratch, settings)
    try:
        catalog_checks: dict[str, list[_Planned]] = {COLUMNS_TABLE: [], KEYS_TABLE: []}
        for suite in suites:
            table = tables.get(suite.table, NotBuilt(f"no table {suite.table}", "critical"))
            if isinstance(table, NotChecked):
                report.results.append(not_checked_row(stamp, suite, suite.whole("warning"), table.reason))
                continue
            if isinstance(table, NotBuilt):
                whole = suite.whole(table.severity)
                report.results.append(result_row(stamp, suite, whole, 0, None, False, table.reason))
                continue
            planned = []
            for exp in suite.expectations:
                absent = _absent_requirements(exp, tables)
                if any(isinstance(a, NotBuilt) for a in absent):
                    reason = "skipped, " + "; ".join(a.reason for a in absent if isinstance(a, NotBuilt))
                    report.results.append(result_row(stamp, suite, exp, 0, None, False, reason))
                elif absent:
                    reason = "; ".join(a.reason for a in absent)
                    report.results.append(not_checked_row(stamp, suite, exp, reason))
                elif exp.type in CATALOG_QUERIES:
                    catalog, query, size = CATALOG_QUERIES[exp.type](suite, exp)
                    rows_query = {"unexpected_rows_query": query}
                    catalog_checks[catalog].append(
                        _Planned(suite, exp, ROWS_CHECK, rows_query, size or table)
                    )
                elif exp.type in COLUMNS_QUERIES:
                    rows_query = {"unexpected_rows_query": COLUMNS_QUERIES[exp.type](exp.kwargs)}
                    planned.append(_Planned(suite, exp, ROWS_CHECK, rows_query, table))
                else:
                    planned.append(_Planned(suite, exp, exp.type, exp.kwargs, table))
            if planned:
                run = (gx, context, datasource, suite.name, suite.table, planned, stamp)
                report.results += _run_validation(*run)
        for catalog, checks in catalog_checks.items():
            if checks:
                run = (gx, context, datasource, f"{stage}.{catalog.strip('_')}", catalog, checks, stamp)
                report.results += _run_validation(*run)
    finally:
        gx_duckdb.close_datasource(datasource)
    return report, context


def _absent_requirements(exp: Expectation, tables: Tables) -> list[NotChecked | NotBuilt]:
    """Why each of the other tables a check reads is absent (none when all are there)."""
    absent = []
    for table in exp.requires:
        value = tables.get(table, NotBuilt(f"no table {table}", exp.severity))
        if not isinstance(value, int):
            absent.append(value)
    return absent


def _gx_expectation(gx: Any, gx_type: str, kwargs: dict[str, Any], meta: dict[str, Any]) -> Any:
    """The GX expectation object for a declared check. Raises QualityError for an unknown type."""
    from great_expectations.expectations.registry import get_expectation_impl

    if gx_type == ROWS_CHECK:
        return gx.expectations.UnexpectedRowsExpectation(**kwargs, meta=meta)
    try:
        impl = get_expectation_impl(gx_type)
    except Exception as exc:  # GX raises its own lookup error types
        raise QualityError(f"unknown expectation type {gx_type!r}") from exc
    return impl(**kwargs, meta=meta)


def _types_query(suite: Suite, exp: Expectation) -> tuple[str, str, int | None]:
    """Rows of `_columns` where a declared column is missing or has another type (GX cannot read column
    types through duckdb-engine, whose inspector fails on SQLAlchemy 2.1)."""
    types: dict[str, str] = exp.kwargs["types"]
    values = ", ".join(f"('{name}', '{type_}')" for name, type_ in types.items())
    query = (
        "select e.column_name, e.expected_type, a.data_type as actual_type "
        f"from (values {values}) as e (column_name, expected_type) "
        f"left join {{batch}} as a on a.table_name = '{suite.table}' and a.column_name = e.column_name "
        "where a.data_type is distinct from e.expected_type"
    )
    return COLUMNS_TABLE, query, len(types)


def _keys_query(suite: Suite, exp: Expectation) -> tuple[str, str, int | None]:
    """Rows of `_repeated_keys` for one uniqueness check: each key that occurs more than once."""
    query = (
        f"select key, copies from {{batch}} where suite = '{suite.name}' and check_name = '{exp.check_name}'"
    )
    return KEYS_TABLE, query, None


# Declared checks answered from a catalog table: (catalog table, query, rows checked or None = table rows).
CATALOG_QUERIES: dict[str, Callable[[Suite, Expectation], tuple[str, str, int | None]]] = {
    TYPES_CHECK: _types_query,
    UNIQUE_CHECK: _keys_query,
}


def _literal(value: Any) -> str:
    """A JSON value of a suite file as a SQL literal (text quoted; DuckDB casts it to the column's type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise QualityError(f"cannot write {value!r} as a SQL literal in a data-quality check")


def _not_null_query(kwargs: dict[str, Any]) -> str:
    """Rows where any of `columns` is NULL."""
    return "select * from {batch} where " + " or ".join(f"{c} is null" for c in kwargs["columns"])


def _in_set_query(kwargs: dict[str, Any]) -> str:
    """Rows where a column of `value_sets` holds a value outside its set (NULL is not outside)."""
    sets: dict[str, list[Any]] = kwargs["value_sets"]
    rules = [f"{c} not in ({', '.join(_literal(v) for v in values)})" for c, values in sets.items()]
    return "select * from {batch} where " + " or ".join(rules)


def _between_query(kwargs: dict[str, Any]) -> str:
    """Rows where any of `columns` lies outside min_value..max_value (NULL is not outside)."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is None and high is None:
        raise QualityError(f"{BETWEEN_CHECK} needs min_value or max_value, got {kwargs}")
    rules = []
    for column in kwargs["columns"]:
        if low is not None:
            rules.append(f"{column} {'<=' if kwargs.get('strict_min') else '<'} {_literal(low)}")
        if high is not None:
            rules.append(f"{column} {'>=' if kwargs.get('strict_max') else '>'} {_literal(high)}")
    return "select * from {batch} where " + " or ".join(rules)


# Declared checks of several columns, run as one unexpected-rows query on the suite's own table.
COLUMNS_QUERIES: dict[str, Callable[[dict[str, Any]], str]] = {
    NOT_NULL_CHECK: _not_null_query,
    IN_SET_CHECK: _in_set_query,
    BETWEEN_CHECK: _between_query,
}


def _run_validation(
    gx: Any,
    context: Any,
    datasource: Any,
    name: str,
    table: str,
    planned: Sequence[_Planned],
    stamp: dict[str, Any],
) -> list[dict[str, Any]]:
    """One GX validation of `table` with the planned checks; a result row per check."""
    from great_expectations.core.run_identifier import RunIdentifier

    asset = datasource.add_table_asset(name=table, table_name=table)
    batch = asset.add_batch_definition_whole_table(f"{table}-all")
    expectations = [
        _gx_expectation(gx, item.gx_type, item.gx_kwargs, _meta(index, item.exp))
        for index, item in enumerate(planned)
    ]
    # Given whole: GX re-serialises the stored suite on every add_expectation (quadratic in its size).
    gx_suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = gx.ValidationDefinition(name=name, data=batch, suite=gx_suite)
    run_id = RunIdentifier(run_name=stamp["run_id"], run_time=stamp["checked_at"])  # names the Data Docs page
    result = context.validation_definitions.add(definition).run(result_format=RESULT_FORMAT, run_id=run_id)
    rows = []
    for outcome in result.results:
        item = planned[int(outcome.expectation_config.meta["meterflow_index"])]
        rows_checked, rows_failed, note = _counts(outcome, item.rows_checked)
        rows.append(
            result_row(stamp, item.suite, item.exp, rows_checked, rows_failed, bool(outcome.success), note)
        )
    return rows


def _meta(index: int, exp: Expectation) -> dict[str, Any]:
    """What GX carries beside an expectation: its place in the plan, and what the Data Docs show."""
    return {"meterflow_index": index, "severity": exp.severity, "description": exp.description}


def _counts(outcome: Any, known_rows: int | None) -> tuple[int | None, int | None, str | None]:
    """Rows checked and failed from a GX result, or the error that kept GX from computing them."""
    info = outcome.exception_info or {}
    errors = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    raised = [e.get("exception_message") for e in errors if e.get("raised_exception")]
    if raised:
        return known_rows, None, f"error: {raised[0]}"
    res = outcome.result or {}
    if "unexpected_count" in res:
        return res.get("element_count", known_rows), res["unexpected_count"], None
    observed = res.get("observed_value")
    if outcome.expectation_config.type == "unexpected_rows_expectation":
        return known_rows, observed, None
    return known_rows, 0 if outcome.success else None, None if outcome.success else f"observed {observed}"
