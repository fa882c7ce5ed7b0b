"""The GX-on-DuckDB fix: without it GX loses every count, with it GX counts inside DuckDB.

If a GX upgrade removes the private constant, or fixes the closed-connection problem itself, these tests
fail and etl/quality/gx_duckdb.py must be revisited. The Data Docs template cache, the other GX patch,
is checked to compile each template once per data home.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.quality import gx_duckdb
from etl.settings import Settings


@pytest.fixture(scope="module")
def gx() -> Any:
    return gx_duckdb.import_gx()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, threads=1, memory_limit="1GB")


def _not_null_result(gx: Any, settings: Settings, name: str, unfix: pytest.MonkeyPatch | None = None) -> Any:
    """Validate `v is not null` on a 10-row DuckDB table with 2 NULLs; the GX expectation result.

    `unfix` takes DuckDB out of GX's persisted-connection dialects once the context exists (creating a
    context applies the fix).
    """
    database = settings.home / f"{name}.duckdb"
    con = duckdb.connect(str(database))
    con.execute(
        "create table t as select i, case when i in (3, 7) then null else 'x' end as v from range(10) r(i)"
    )
    con.close()
    context = gx_duckdb.new_context(settings.home / "docs")
    if unfix is not None:
        from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

        unfixed = tuple(d for d in engine._PERSISTED_CONNECTION_DIALECTS if d != "duckdb")
        unfix.setattr(engine, "_PERSISTED_CONNECTION_DIALECTS", unfixed)
    datasource = gx_duckdb.add_duckdb_datasource(context, name, database, settings)
    try:
        batch = datasource.add_table_asset(name="t", table_name="t").add_batch_definition_whole_table("all")
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="v"))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        return definition.run(result_format="BASIC").results[0]
    finally:
        gx_duckdb.close_datasource(datasource)


def test_constant_is_a_tuple_of_dialects_with_duckdb_added_once(gx: Any) -> None:
    gx_duckdb.enable_persisted_connection()
    gx_duckdb.enable_persisted_connection()
    dialects = gx_duckdb.persisted_dialects()
    assert "sqlite" in dialects
    assert sum(1 for d in dialects if d == "duckdb") == 1
    duck = next(d for d in dialects if d == "duckdb")
    assert duck.value == "duckdb"  # GX reads `.value` when it picks the connection pool


def test_without_the_fix_gx_loses_the_counts(
    gx: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _not_null_result(gx, settings, "unfixed", unfix=monkeypatch)
    assert result.success is False
    assert result.result.get("unexpected_count") is None
    assert result.result.get("element_count") is None


def test_with_the_fix_gx_counts_in_duckdb(gx: Any, settings: Settings) -> None:
    result = _not_null_result(gx, settings, "fixed")
    assert result.success is False
    assert result.result["element_count"] == 10
    assert result.result["unexpected_count"] == 2


def test_closing_the_datasource_frees_the_file(gx: Any, settings: Settings) -> None:
    _not_null_result(gx, settings, "reopen")
    # A read-write connection with another configuration fails while GX still holds the file open.
    con = duckdb.connect(str(settings.home / "reopen.duckdb"))
    assert con.execute("select count(*) from t").fetchone() == (10,)
    con.close()


def test_context_writes_data_docs_only_under_the_given_folder(gx: Any, settings: Settings) -> None:
    context = gx_duckdb.new_context(settings.home / "docs")
    assert list(context.variables.data_docs_sites) == [gx_duckdb.DOCS_SITE]


def test_a_gx_without_the_constant_is_reported(gx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    from etl.errors import QualityError

    monkeypatch.delattr(engine, "_PERSISTED_CONNECTION_DIALECTS")
    with pytest.raises(QualityError, match="_PERSISTED_CONNECTION_DIALECTS is gone"):
        gx_duckdb.enable_persisted_connection()


def test_data_docs_templates_are_compiled_once(
    gx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compiled_templates_kept: a second check of a data home compiles no Data Docs template."""
    import jinja2
    from great_expectations.render.view.view import DefaultJinjaView

    from etl.quality import check
    from etl.quality.datadocs import docs_dir
    from tests.test_quality import RUN, Lake, interval

    lake = Lake(tmp_path)
    lake.ingest("interval_reads", [interval("M1", "2025-09-01 00:00", "1.5")])
    check(lake.settings, RUN, "raw", periods=["2025-09"])
    page = (docs_dir(lake.settings, "raw") / "index.html").read_text(encoding="utf-8")
    compiled: list[str] = []
    compile_template = jinja2.Environment.compile

    def counted(self: jinja2.Environment, source: Any, name: str | None = None, *args: Any) -> Any:
        compiled.append(str(name))
        return compile_template(self, source, name, *args)

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    check(lake.settings, RUN, "raw", periods=["2025-09"])
    assert compiled == []  # every template came from the bytecode cache of the first check
    assert DefaultJinjaView.__init__.__qualname__ == "DefaultJinjaView.__init__"  # put back afterwards
    again = (docs_dir(lake.settings, "raw") / "index.html").read_text(encoding="utf-8")
    assert len(again.splitlines()) == len(page.splitlines())
