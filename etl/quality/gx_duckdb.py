"""Great Expectations 1.x on DuckDB: the fix that makes SQL push-down work, the GX context, and the one
other GX internal meterflow touches (Data Docs templates compiled once). Every GX patch lives here.

GX's SQL execution engine opens a connection per metric query (`with engine.connect()`) and closes it
before the result rows are fetched. duckdb-engine's cursor results do not survive that close, so on a
DuckDB datasource every expectation fails with "list index out of range". GX already keeps one
connection open for the dialects listed in `_PERSISTED_CONNECTION_DIALECTS` (SQLite, SQL Server, ...);
adding DuckDB there makes GX compute its metrics inside DuckDB with correct counts. That private
constant, and the execution engine's `_connection` that the fix keeps open (closed in
`close_datasource`), are the GX internals the fix relies on; tests/test_gx_duckdb.py fails when a GX
upgrade changes them or makes the fix unnecessary.

`compiled_templates_kept` patches GX's Data Docs view class for speed only; without that class the docs
are built as before.

`import great_expectations` takes seconds, so it happens inside `import_gx()`, never at module import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from etl.errors import QualityError
from etl.settings import Settings

DIALECT = "duckdb"
DOCS_SITE = "meterflow"


class _DialectName(str):
    """A dialect name that GX can compare as a string and read `.value` from, like its GXSqlDialect."""

    @property
    def value(self) -> str:
        return str(self)


def persisted_dialects() -> tuple[Any, ...]:
    """GX's dialects that keep one open connection. Raises QualityError when GX no longer has the list."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    dialects = getattr(engine, "_PERSISTED_CONNECTION_DIALECTS", None)
    if not isinstance(dialects, tuple):
        raise QualityError(
            "great_expectations.execution_engine.sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS "
            "is gone: the DuckDB push-down fix in etl/quality/gx_duckdb.py must be redone for this GX version"
        )
    return dialects


def enable_persisted_connection() -> None:
    """Make GX keep one DuckDB connection open per datasource (idempotent). Raises QualityError as above."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    dialects = persisted_dialects()
    if DIALECT not in dialects:
        # GX compares `dialect_name in` the tuple and also reads `.value` of each entry.
        engine._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DialectName(DIALECT))


def import_gx() -> ModuleType:
    """Import great_expectations with usage statistics off and the DuckDB fix applied."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    enable_persisted_connection()
    return gx


def engine_kwargs(settings: Settings) -> dict[str, Any]:
    """SQLAlchemy engine arguments: a read-only DuckDB with meterflow's memory limit, threads and spill dir.

    The time zone is left out: DuckDB cannot load ICU from the connect-time config, and the checks only
    see naive local timestamps, which no time zone setting changes.
    """
    settings.duckdb_temp.mkdir(parents=True, exist_ok=True)
    config = {
        "memory_limit": settings.memory_limit,
        "threads": int(settings.threads),
        "temp_directory": settings.duckdb_temp.as_posix(),
    }
    return {"connect_args": {"read_only": True, "config": config}}


def new_context(docs_dir: Path) -> Any:
    """An in-memory GX context whose only Data Docs site is `docs_dir` (nothing written elsewhere)."""
    gx = import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir.as_posix()},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        # Validation pages show each expectation with its result; separate suite pages would repeat them.
        "site_section_builders": {"expectations": "0", "profiling": "0"},
    }
    config = DataContextConfig(
        # The default in-memory config adds a docs site in the system temp folder: only the data home
        # may be written.
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={DOCS_SITE: site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def add_duckdb_datasource(context: Any, name: str, database: Path, settings: Settings) -> Any:
    """A GX SQL datasource over a DuckDB file, opened read-only. Raises QualityError if it cannot connect."""
    try:
        return context.data_sources.add_sql(
            name=name,
            connection_string=f"duckdb:///{database.as_posix()}",
            kwargs=engine_kwargs(settings),
        )
    except Exception as exc:  # GX wraps every connection problem in its own error types
        raise QualityError(f"cannot open {database} for data-quality checks: {exc}") from exc


def close_datasource(datasource: Any) -> None:
    """Close the datasource's DuckDB connections so the database file can be reopened or removed."""
    execution_engine = datasource.get_execution_engine()
    connection = getattr(execution_engine, "_connection", None)  # the connection the fix keeps open
    if connection is not None:
        connection.close()
    execution_engine.close()
    datasource.get_engine().dispose()


_TEMPLATES_LOCK = threading.Lock()


@contextmanager
def compiled_templates_kept(folder: Path) -> Iterator[None]:
    """Keep the Jinja templates of GX's Data Docs compiled in `folder` meanwhile.

    Each Data Docs view of GX makes its own Jinja environment and so parses and compiles its templates
    again: about 1 s of every check's 1.5 s of Data Docs. With Jinja's bytecode cache (keyed by template
    name and source checksum, written by rename) a check compiles only what no earlier check did. The
    pages are the same. Without GX's view class as expected the docs are built as before.
    """
    from jinja2 import FileSystemBytecodeCache

    try:
        from great_expectations.render.view.view import DefaultJinjaView
    except ImportError:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    cache = FileSystemBytecodeCache(folder.as_posix())
    original = DefaultJinjaView.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.env.bytecode_cache = cache

    with _TEMPLATES_LOCK:  # the class is patched for this process: one check's docs at a time
        DefaultJinjaView.__init__ = init  # type: ignore[method-assign]
        try:
            yield
        finally:
            DefaultJinjaView.__init__ = original  # type: ignore[method-assign]
