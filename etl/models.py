"""Runs the DuckDB SQL models in sql/ and registers the lake as their sources.

A model is one `select` in `sql/<layer>/<name>.sql`. Its header is the grain and key comment, then, after a
blank line (so that the data dictionary's header stays the grain), its declarations:

    -- materialized: table                 `table` or `view`: what running the model creates
    -- parameters: vee_from, vee_to        the session variables it reads with getvariable (none: no line)

Running a model creates a table or view of the same name in the connection. A model depends on every other
model its SQL names (comments aside); besides those it reads only relations registered here or by its
caller: `raw_<dataset>` (committed raw Parquet of a dataset), `validated_<table>` and `aggregates_<model>`
(the lake's derived layers). `build` takes the models a caller wants, adds the models they depend on, sets
and checks their parameters, and runs them in dependency order.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from etl.contract import DATASETS, LINEAGE_COLUMNS, SNAPSHOT_COLUMN
from etl.errors import MeterflowError
from etl.lake import raw_files, sql_list
from etl.settings import Settings
from etl.timezone import install_macros

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
LAYERS = ("staging", "intermediate", "marts")
MATERIALIZATIONS = ("table", "view")

_DECLARATION = re.compile(r"--\s*(materialized|parameters)\s*:\s*(.*?)\s*")
_VARIABLE = re.compile(r"getvariable\(\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*\)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT = re.compile(r"--[^\n]*")


class ModelError(MeterflowError):
    """A SQL model's header is wrong, its models depend on each other in a cycle, or a parameter is unset."""


@dataclass(frozen=True)
class Model:
    """One SQL model: its name, its `select`, how it is materialised, what it reads."""

    name: str
    sql: str
    materialized: str
    parameters: frozenset[str]
    depends_on: frozenset[str]


@cache
def _paths() -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for layer in LAYERS:
        for path in sorted((SQL_DIR / layer).glob("*.sql")):
            if path.stem in paths:
                raise ModelError(f"two SQL models named {path.stem}: {paths[path.stem]} and {path}")
            paths[path.stem] = path
    return paths


def model_path(name: str) -> Path:
    """The file of model `name`. Raises KeyError when no layer has it."""
    try:
        return _paths()[name]
    except KeyError:
        raise KeyError(f"no SQL model named {name!r} under {SQL_DIR}") from None


def models_in(layer: str) -> list[str]:
    """The names of the models of one layer (`staging`, `intermediate` or `marts`)."""
    return [name for name, path in _paths().items() if path.parent.name == layer]


def parse_model(name: str, text: str, known: Iterable[str]) -> Model:
    """Read a model's declarations and dependencies from its SQL text.

    Raises ModelError when the materialisation is missing or unknown, or when the declared parameters differ
    from the variables the SQL reads.
    """
    declared: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("--"):
            break
        match = _DECLARATION.fullmatch(line)
        if match:
            if match.group(1) in declared:
                raise ModelError(f"model {name} declares '{match.group(1)}' twice")
            declared[match.group(1)] = match.group(2)
    materialized = declared.get("materialized")
    if materialized not in MATERIALIZATIONS:
        raise ModelError(
            f"model {name}: its header must declare '-- materialized: table' or '-- materialized: view', "
            f"not {materialized!r}"
        )
    parameters = frozenset(p.strip() for p in declared.get("parameters", "").split(",") if p.strip())
    code = _COMMENT.sub("", text)
    read = {v.lower() for v in _VARIABLE.findall(code)}
    if read - parameters:
        undeclared = ", ".join(sorted(read - parameters))
        raise ModelError(f"model {name} reads parameter(s) {undeclared} not declared in '-- parameters:'")
    if parameters - read:
        unused = ", ".join(sorted(parameters - read))
        raise ModelError(f"model {name} declares parameter(s) {unused} that it never reads")
    names = {token.lower() for token in _IDENTIFIER.findall(code)}
    depends_on = frozenset(names & set(known) - {name})
    return Model(name, text.strip().rstrip(";"), materialized, parameters, depends_on)


@cache
def model(name: str) -> Model:
    """Model `name` as its file declares it. Raises KeyError when there is none, ModelError when malformed."""
    text = model_path(name).read_text(encoding="utf-8")
    return parse_model(name, text, _paths())


def plan(targets: Iterable[str], given: Iterable[str] = ()) -> list[Model]:
    """`targets` and every model they depend on, each after its dependencies.

    Models in `given` are already in the session: they are not run, nor is what only they depend on.
    Raises KeyError for an unknown model, ModelError when models depend on each other in a cycle.
    """
    skip = set(given)
    done: set[str] = set()
    order: list[Model] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in skip or name in done:
            return
        if name in path:
            raise ModelError("SQL models depend on each other in a cycle: " + " -> ".join((*path, name)))
        current = model(name)
        for dependency in sorted(current.depends_on):
            visit(dependency, (*path, name))
        done.add(name)
        order.append(current)

    for target in targets:
        visit(target, ())
    return order


def set_params(con: duckdb.DuckDBPyConnection, params: Mapping[str, object]) -> None:
    """Set session variables for the models: a collection becomes VARCHAR[] (a set sorted, so that a run
    is repeatable), other values keep their type. Raises ModelError for a name that is no identifier."""
    for name, value in params.items():
        if not _IDENTIFIER.fullmatch(name):
            raise ModelError(f"{name!r} is not a parameter name")
        if isinstance(value, set | frozenset):
            value = sorted(value)
        if isinstance(value, list | tuple):
            con.execute(f"set variable {name} = ?::varchar[]", [list(value)])
        else:
            con.execute(f"set variable {name} = ?", [value])


def _check_params(con: duckdb.DuckDBPyConnection, steps: Iterable[Model]) -> None:
    is_set = {row[0] for row in con.execute("select name from duckdb_variables()").fetchall()}
    for step in steps:
        for name in sorted(step.parameters - is_set):
            raise ModelError(f"model {step.name} reads parameter {name}, which is not set in this session")


def _create(con: duckdb.DuckDBPyConnection, step: Model, materialized: str) -> None:
    start = time.perf_counter()
    con.execute(f"create or replace {materialized} {step.name} as {step.sql}")
    log.debug("model %s (%s): %.3f s", step.name, materialized, time.perf_counter() - start)


def build(
    con: duckdb.DuckDBPyConnection,
    targets: Iterable[str],
    params: Mapping[str, object] | None = None,
    given: Iterable[str] = (),
) -> list[str]:
    """Build `targets` and what they depend on (except `given`) in `con`; returns the models run, in order.

    `params` are set as session variables first; every parameter a model to run declares must then be set.
    Raises ModelError naming the model and the parameter before anything runs, duckdb.Error when a model
    fails.
    """
    steps = plan(targets, given)
    if params:
        set_params(con, params)
    _check_params(con, steps)
    install_macros(con)
    for step in steps:
        _create(con, step, step.materialized)
    return [step.name for step in steps]


def run_model(con: duckdb.DuckDBPyConnection, name: str, materialize: str | None = None) -> None:
    """Build model `name` alone, as declared or as `materialize`; what it reads must be in `con` already.

    Raises KeyError for an unknown model, ModelError when a parameter it reads is not set.
    """
    step = model(name)
    _check_params(con, [step])
    install_macros(con)
    _create(con, step, materialize or step.materialized)


def set_periods(con: duckdb.DuckDBPyConnection, periods: list[str]) -> None:
    """Set the `build_periods` parameter (a list of 'YYYY-MM') that the monthly models read."""
    set_params(con, {"build_periods": periods})


def empty_select(columns: dict[str, str]) -> str:
    cols = ", ".join(f"null::{t} as {n}" for n, t in columns.items())
    return f"select {cols} where false"


def raw_columns(dataset: str) -> dict[str, str]:
    """The raw layer's columns of a dataset: contract columns then lineage."""
    spec = DATASETS[dataset]
    cols = {c.name: c.lake_type for c in spec.columns} | spec.instant_column | LINEAGE_COLUMNS
    return cols | SNAPSHOT_COLUMN if spec.is_reference else cols


def register_parquet(
    con: duckdb.DuckDBPyConnection, view: str, files: list[Path], columns: dict[str, str], where: str = ""
) -> None:
    """Create view `view` over Parquet files, or an empty one with `columns` when there are none; `where`,
    a SQL condition, keeps only the rows that meet it."""
    if files:
        body = (
            f"select * from read_parquet({sql_list(files)}, union_by_name = true, hive_partitioning = false)"
        )
        if where:
            body += f" where {where}"
    else:
        body = empty_select(columns)
    con.execute(f"create or replace view {view} as {body}")


def register_raw(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    dataset: str,
    partitions: Iterable[str] | None = None,
    where: str = "",
) -> None:
    """Register `raw_<dataset>` over the dataset's committed raw files (optionally some partitions, and
    only the rows meeting `where`)."""
    register_parquet(
        con, f"raw_{dataset}", raw_files(settings, dataset, partitions), raw_columns(dataset), where
    )
