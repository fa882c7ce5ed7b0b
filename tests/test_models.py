"""The model runner: headers, dependencies, order and parameters of the SQL models in sql/."""

from __future__ import annotations

import duckdb
import pytest

from etl import models
from etl.models import (
    ModelError,
    build,
    model,
    models_in,
    parse_model,
    plan,
    raw_columns,
    register_parquet,
    run_model,
    set_params,
    set_periods,
)

KNOWN = ("stg_a", "int_b", "int_c")


def kinds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every relation of the session and whether it is a table or a view."""
    tables = {r[0]: "table" for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    views = {
        r[0]: "view"
        for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()
    }
    return tables | views


def test_every_model_declares_how_it_is_built_and_what_it_reads() -> None:
    names = [*models_in("staging"), *models_in("intermediate"), *models_in("marts")]
    files = [p for layer in models.LAYERS for p in (models.SQL_DIR / layer).glob("*.sql")]
    assert len(names) == len(set(names)) == len(files)
    for name in names:
        assert model(name).materialized in ("table", "view"), name
    assert model("int_sales__monthly").depends_on == {"int_bill_lines__by_bill", "int_customers__current"}
    assert model("int_payments__current").parameters == {"build_periods"}
    assert model("int_interval_reads__sequenced").parameters == {"vee_read_from", "vee_read_to"}
    # the whole graph has an order: no model depends on itself through others
    assert len(plan(names)) == len(names)


def test_layers_depend_only_on_the_layers_before_them() -> None:
    for name in models_in("staging"):
        assert model(name).depends_on == set(), name
    for name in models_in("intermediate"):
        assert all(d.startswith(("stg_", "int_")) for d in model(name).depends_on), name
    # the marts read the aggregates' files (aggregates_<model>), never a model of the aggregates stage: at
    # most an intermediate view that itself reads only aggregates, shared by marts and dropped before publish
    shared = set()
    for name in models_in("marts"):
        for dependency in model(name).depends_on:
            assert dependency.startswith("int_") and model(dependency).depends_on == set(), (name, dependency)
            shared.add(dependency)
    assert shared == {"int_dt_balance__scored"}


def test_the_plan_puts_dependencies_first_and_skips_what_is_given() -> None:
    order = [m.name for m in plan(["int_sales__monthly"])]
    assert order == [
        "stg_lake__bill_lines",
        "int_bill_lines__latest_versions",
        "int_bill_lines__current",
        "int_bill_lines__by_bill",
        "stg_lake__customers",
        "int_customers__current",
        "int_sales__monthly",
    ]
    given = [m.name for m in plan(["int_sales__monthly"], given=["int_customers__current"])]
    assert given == [
        "stg_lake__bill_lines",
        "int_bill_lines__latest_versions",
        "int_bill_lines__current",
        "int_bill_lines__by_bill",
        "int_sales__monthly",
    ]


def test_the_header_declares_materialisation_and_parameters() -> None:
    text = """-- one row per thing (key: thing_id)
-- mentions int_c in a comment: not a dependency

-- materialized: view
-- parameters: since, until
select * from stg_a where seq > getvariable('since') and seq <= getvariable('until')
"""
    parsed = parse_model("int_b", text, KNOWN)
    assert (parsed.materialized, parsed.parameters, parsed.depends_on) == (
        "view",
        {"since", "until"},
        {"stg_a"},
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("-- parameters: since", "must declare '-- materialized: table'"),
        ("-- materialized: ephemeral\n-- parameters: since", "not 'ephemeral'"),
        ("-- materialized: table", "reads parameter(s) since not declared"),
        ("-- materialized: table\n-- parameters: since, until", "declares parameter(s) until that it never"),
        (
            "-- materialized: table\n-- materialized: view\n-- parameters: since",
            "declares 'materialized' twice",
        ),
    ],
)
def test_a_wrong_header_is_a_clear_error(header: str, message: str) -> None:
    text = f"-- one row per thing\n\n{header}\nselect * from stg_a where seq > getvariable('since')\n"
    with pytest.raises(ModelError, match="model int_b") as error:
        parse_model("int_b", text, KNOWN)
    assert message in str(error.value)


def test_a_cycle_is_an_error_naming_its_models(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = {
        "int_b": "-- b\n\n-- materialized: view\nselect * from int_c",
        "int_c": "-- c\n\n-- materialized: view\nselect * from int_b",
    }
    monkeypatch.setattr(models, "model", lambda name: parse_model(name, texts[name], KNOWN))
    with pytest.raises(ModelError, match="cycle: int_b -> int_c -> int_b"):
        plan(["int_b"])


def test_build_sets_the_parameters_and_builds_what_each_model_declares() -> None:
    con = duckdb.connect()
    register_parquet(con, "raw_payments", [], raw_columns("payments"))
    with pytest.raises(ModelError, match="model int_payments__current reads parameter build_periods"):
        build(con, ["int_payments__current"])
    assert kinds(con) == {"raw_payments": "view"}  # nothing ran
    built = build(con, ["int_payments__current"], params={"build_periods": ["2025-01"]})
    assert built == ["stg_lake__payments", "int_payments__current"]
    assert kinds(con) == {
        "raw_payments": "view",
        "stg_lake__payments": "view",
        "int_payments__current": "view",
    }
    variables = con.execute("select name, value, type from duckdb_variables()").fetchall()
    assert variables == [("build_periods", "[2025-01]", "VARCHAR[]")]


def test_period_lists_are_lists_of_text_even_empty_and_sets_are_sorted() -> None:
    con = duckdb.connect()
    set_periods(con, [])
    assert con.execute("select typeof(getvariable('build_periods'))").fetchone() == ("VARCHAR[]",)
    set_params(con, {"build_periods": {"2025-02", "2025-01"}})
    assert con.execute("select getvariable('build_periods')").fetchone() == (["2025-01", "2025-02"],)
    with pytest.raises(ModelError, match="not a parameter name"):
        set_params(con, {"x; drop table t": 1})


def test_run_model_builds_one_model_as_declared_or_as_asked() -> None:
    con = duckdb.connect()
    register_parquet(con, "raw_meters", [], raw_columns("meters"))
    run_model(con, "stg_lake__meters", "table")
    assert kinds(con)["stg_lake__meters"] == "table"
    with pytest.raises(KeyError, match="no SQL model named 'int_nothing__here'"):
        run_model(con, "int_nothing__here")
    with pytest.raises(ModelError, match="int_register_reads__touched reads parameter vee_since_seq"):
        run_model(con, "int_register_reads__touched")
