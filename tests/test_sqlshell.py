"""`meterflow sql`: queries print as tables or CSV, and nothing can change the published marts."""

from __future__ import annotations

import io
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from etl.errors import MeterflowError
from etl.settings import Settings
from etl.sqlshell import QueryResult, format_table, history_path, open_marts, repl, run_shell, run_sql


@pytest.fixture(scope="module")
def settings(fixture_marts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("sql-home")
    (home / "warehouse").mkdir()
    shutil.copy(fixture_marts_home / "warehouse" / "marts.duckdb", home / "warehouse" / "marts.duckdb")
    return Settings(home=home, threads=1, memory_limit="512MB")


def _run(settings: Settings, query: str, as_csv: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_shell(settings, query, as_csv=as_csv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _session(settings: Settings, script: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    con = open_marts(settings)
    try:
        assert repl(con, io.StringIO(script), out, err) == 0
    finally:
        con.close()
    return out.getvalue(), err.getvalue()


def _kpi_rows(settings: Settings) -> str:
    return _run(settings, "select count(*) as n, sum(kwh_sold) as kwh from mart_kpi_monthly")[1]


def test_query_prints_an_aligned_table(settings: Settings) -> None:
    code, out, err = _run(
        settings,
        "select period, region_code, kwh_sold, plan_kwh_sold from mart_kpi_monthly "
        "where period = '2025-09' order by region_code",
    )
    assert (code, err) == (0, "")
    assert out == (
        "period  | region_code | kwh_sold    | plan_kwh_sold\n"
        "--------+-------------+-------------+--------------\n"
        "2025-09 | ALL         | 172,000,000 | 2,087,000,000\n"
        "2025-09 | DH          | 101,000,000 | 1,250,000,000\n"
        "2025-09 | VL          |  71,000,000 |          NULL\n"
        "(3 rows)\n"
    )


def test_raw_prints_the_numbers_as_stored(settings: Settings) -> None:
    out = io.StringIO()
    sql = "select kwh_sold from mart_kpi_monthly where period = '2025-09' and region_code = 'DH'"
    assert run_shell(settings, sql, out=out, err=io.StringIO(), raw=True) == 0
    assert out.getvalue() == "kwh_sold\n----------------\n101000000.000000\n(1 row)\n"


def test_numbers_are_written_as_a_person_reads_them() -> None:
    result = QueryResult(
        ["year", "customers", "kwh", "price", "share", "empty"],
        [
            (2025, 12345, Decimal("1234567.500000"), 2285.954, 0.123456, None),
            (2024, 987, Decimal("-20000.000000"), 2100.0, 0.5, None),
            (None, 0, None, float("nan"), 1e-05, None),
        ],
    )
    assert format_table(result) == (
        "year | customers | kwh          | price    | share  | empty\n"
        "-----+-----------+--------------+----------+--------+------\n"
        "2025 |    12,345 | 1,234,567.50 | 2,285.95 | 0.1235 | NULL\n"
        "2024 |       987 |   -20,000.00 | 2,100.00 | 0.5000 | NULL\n"
        "NULL |         0 |         NULL |      nan | 0.0000 | NULL\n"
        "(3 rows)"
    )


def test_query_as_csv(settings: Settings) -> None:
    code, out, _ = _run(
        settings,
        "select period, plan_kwh_sold from mart_kpi_monthly where period = '2025-01' order by region_code",
        as_csv=True,
    )
    assert code == 0
    assert out == "period,plan_kwh_sold\n2025-01,2087000000.000000\n2025-01,1250000000.000000\n2025-01,\n"


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("create table notes (x int)", "CREATE"),
        ("insert into mart_kpi_monthly (period) values ('2030-01')", "INSERT"),
        ("update mart_kpi_monthly set kwh_sold = 0", "UPDATE"),
        ("delete from mart_sales_monthly", "DELETE"),
        ("drop table mart_data_quality", "DROP"),
        ("create view v as select 1", "CREATE"),
    ],
)
def test_writes_fail_with_the_read_only_error(settings: Settings, statement: str, kind: str) -> None:
    before = _kpi_rows(settings)
    code, out, err = _run(settings, statement)
    assert code == 1 and out == ""
    assert err.startswith("error: read-only: the published marts cannot be changed here.")
    assert f'Cannot execute statement of type "{kind}"' in err and "read-only mode" in err
    assert _kpi_rows(settings) == before


def test_no_file_outside_the_marts_can_be_written_or_attached(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    code, _, err = _run(settings, f"copy mart_kpi_monthly to '{target}'")
    assert code == 1 and "not allowed in this read-only session" in err
    assert not target.exists()
    code, _, err = _run(settings, f"attach '{tmp_path / 'other.duckdb'}' as other")
    assert code == 1 and "disabled by configuration" in err
    code, _, err = _run(settings, "set enable_external_access = true")
    assert code == 1 and "locked" in err


def test_session_commands_and_multi_line_statements(settings: Settings) -> None:
    script = (
        ".tables\n"
        ".schema mart_sales_monthly\n"
        "select count(*) as regions\n"
        "  from mart_kpi_monthly\n"
        " where period = '2025-09';\n"
        "insert into mart_sales_monthly select * from mart_sales_monthly;\n"
        ".schema nowhere\n"
        "create temp table scratch as select 41 + 1 as answer;\n"
        "select answer from scratch;\n"
        ".quit\n"
        "select 'never run' as after_quit;\n"
    )
    out, err = _session(settings, script)
    # the hand-made fixture marts carry no comments (the published ones do: see below)
    assert out == (
        "name                        | type       | rows\n"
        "----------------------------+------------+-----\n"
        "mart_data_quality           | BASE TABLE |\n"
        "mart_energy_balance_monthly | BASE TABLE |\n"
        "mart_inspections_monthly    | BASE TABLE |\n"
        "mart_kpi_monthly            | BASE TABLE |\n"
        "mart_sales_monthly          | BASE TABLE |\n"
        "mart_service_mix_monthly    | BASE TABLE |\n"
        "mart_service_monthly        | BASE TABLE |\n"
        "(7 rows)\n"
        "column_name           | data_type     | comment\n"
        "----------------------+---------------+--------\n"
        "period                | VARCHAR       |\n"
        "region_code           | VARCHAR       |\n"
        "customer_class        | VARCHAR       |\n"
        "tariff_code           | VARCHAR       |\n"
        "kwh_sold              | DECIMAL(38,6) |\n"
        "revenue_vnd           | DECIMAL(38,8) |\n"
        "avg_price_vnd_per_kwh | DOUBLE        |\n"
        "customers_billed      | BIGINT        |\n"
        "(8 rows)\n"
        "regions\n"
        "-------\n"
        "      3\n"
        "(1 row)\n"
        "Count\n"
        "-----\n"
        "    1\n"
        "(1 row)\n"
        "answer\n"
        "------\n"
        "    42\n"
        "(1 row)\n"
    )
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: read-only:") and '"INSERT"' in lines[0]
    assert lines[1] == "error: no table named 'nowhere'; .tables lists them"


def test_session_shows_at_most_200_rows_and_runs_a_last_statement_without_semicolon(
    settings: Settings,
) -> None:
    out, _ = _session(settings, "select node_id from mart_energy_balance_monthly\n")
    lines = out.splitlines()
    assert len(lines) == 2 + 200 + 1
    assert lines[-1] == "(200 rows, showing the first 200; add a LIMIT or use -c for all)"
    code, out, _ = _run(settings, "select node_id from mart_energy_balance_monthly")
    assert code == 0 and out.splitlines()[-1] == "(234 rows)"


def test_errors_are_reported_and_the_session_goes_on(settings: Settings) -> None:
    out, err = _session(settings, "select nonsense from mart_kpi_monthly;\nselect 1 as one;\n")
    assert 'Referenced column "nonsense" not found' in err
    assert out == "one\n---\n  1\n(1 row)\n"


def test_format_table_of_a_statement_without_rows() -> None:
    assert format_table(QueryResult([], [])) == "ok"
    assert format_table(QueryResult(["a", "b"], [])) == "a | b\n--+--\n(0 rows)"


def test_missing_marts_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MeterflowError, match="no published marts at .*run `meterflow run` first"):
        run_shell(Settings(home=tmp_path), "select 1")


def test_history_file_can_be_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("METERFLOW_SQL_HISTORY", str(tmp_path / "h"))
    assert history_path() == tmp_path / "h"
    monkeypatch.delenv("METERFLOW_SQL_HISTORY")
    assert history_path() == Path.home() / ".meterflow_sql_history"


def test_cli_sql_exit_codes(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from etl.cli import main

    assert main(["--home", str(settings.home), "sql", "-c", "select 2 as two"]) == 0
    assert capsys.readouterr().out == "two\n---\n  2\n(1 row)\n"
    assert main(["--home", str(settings.home), "sql", "-c", "drop table mart_kpi_monthly"]) == 1
    assert "read-only" in capsys.readouterr().err


# --- the data dictionary inside the published file ----------------------------------------------------


def test_the_published_marts_carry_the_dictionary_as_comments(generated_company: Settings) -> None:
    """Every documented column of every published mart has its `-- column: definition (unit)` comment
    of sql/marts/ as its DuckDB comment, and every mart its header as the table comment."""
    repo = Path(__file__).resolve().parents[1]
    con = open_marts(generated_company)
    try:
        comments = dict(
            ((t, c), comment)
            for t, c, comment in con.execute(
                "select table_name, column_name, comment from duckdb_columns()"
            ).fetchall()
        )
        table_comments = dict(con.execute("select table_name, comment from duckdb_tables()").fetchall())
        schema = run_sql(con, "select 1").columns  # the session stays usable
    finally:
        con.close()
    assert schema == ["1"]
    checked = 0
    for model in sorted((repo / "sql" / "marts").glob("mart_*.sql")):
        text = model.read_text(encoding="utf-8")
        documented = re.findall(r"^\s*-- ([a-z_][a-z0-9_]*): (.+?)\s*$", text, flags=re.MULTILINE)
        for column, definition in documented:
            if (model.stem, column) in comments:
                assert comments[(model.stem, column)] == definition, (model.stem, column)
                checked += 1
        grain = text.splitlines()[0].removeprefix("-- ").split("(key:")[0].strip()
        assert table_comments[model.stem].lower().startswith(grain.lower()), model.stem
    assert checked > 60
    assert comments[("mart_sales_monthly", "kwh_sold")] == (
        "kWh of the bill lines, latest export versions, adjustments signed (kWh)"
    )


def test_schema_in_a_session_shows_the_comments(generated_company: Settings) -> None:
    out, err = _session(generated_company, ".schema mart_sales_monthly\n")
    assert err == ""
    assert "kwh_sold              | DECIMAL(38,6) | kWh of the bill lines, latest export versions" in out
