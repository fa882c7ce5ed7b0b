"""`meterflow sql`: a small read-only SQL session on the published marts.

The marts file is opened read-only, so CREATE, INSERT, UPDATE, DELETE and DROP fail with DuckDB's own
read-only error. The session also turns off DuckDB's access to other files (no COPY TO, ATTACH or
read_csv of arbitrary paths) and locks its configuration: an analyst's session reads the marts and nothing
else. Temporary tables (`create temp table`) still work; they live in memory and vanish on exit.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb

from etl.duck import connect
from etl.errors import MeterflowError
from etl.settings import Settings

PROMPT = "marts> "
CONTINUATION = "  ...> "
INTERACTIVE_MAX_ROWS = 200  # a session shows at most this many rows; `-c` prints them all
HISTORY_ENV = "METERFLOW_SQL_HISTORY"
HELP = """\
Enter SQL ending with ';' (it may span lines). Commands:
  .tables          list the marts
  .schema [TABLE]  columns, types and meanings of one mart, or of all
  .help            this text
  .quit            leave (Ctrl-D too)
The marts are read-only; `create temp table` gives scratch space that disappears on exit."""


@dataclass(frozen=True)
class QueryResult:
    """The columns and rows of one statement; `truncated` when rows beyond the limit were left out."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False


def open_marts(settings: Settings, marts: Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open the published marts read-only, without access to other files. Raises MeterflowError if absent."""
    path = marts or settings.marts_path
    if not path.exists():
        raise MeterflowError(f"no published marts at {path}; run `meterflow run` first")
    con = connect(settings, path, read_only=True)
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    return con


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, max_rows: int | None = None) -> QueryResult:
    """Run `sql` (one or more statements; the last one's rows are returned). Raises duckdb.Error."""
    cur = con.execute(sql)
    if cur.description is None:
        return QueryResult([], [])
    columns = [d[0] for d in cur.description]
    if max_rows is None:
        return QueryResult(columns, cur.fetchall())
    rows = cur.fetchmany(max_rows + 1)
    return QueryResult(columns, rows[:max_rows], truncated=len(rows) > max_rows)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _numeric_column(values: list[Any]) -> bool:
    """True when the column holds numbers (and perhaps NULLs): it is then right-aligned."""
    present = [v for v in values if v is not None]
    return bool(present) and all(_is_number(v) for v in present)


def _number_format(values: list[Any]) -> Callable[[Any], str]:
    """How a person reads the numbers of one column: thousands grouped (in a column of whole numbers only
    once one reaches 10,000, so that a year stays 2025), whole numbers without decimals, others with two
    (four when all are below 1)."""
    present = [v for v in values if v is not None]
    whole = all(isinstance(v, int) or (math.isfinite(v) and v == int(v)) for v in present)
    grouped = not whole or any(abs(v) >= 10_000 for v in present if math.isfinite(v))
    small = all(abs(v) < 1 for v in present if math.isfinite(v))
    digits = 0 if whole else 4 if small else 2
    spec = f"{',' if grouped else ''}.{digits}f"

    def show(value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return format(value if isinstance(value, int) else Decimal(value), spec)

    return show


def format_table(result: QueryResult, raw: bool = False) -> str:
    """The result as an aligned text table with a row count; numbers right-aligned and, unless `raw`,
    written as a person reads them (see _number_format)."""
    if not result.columns:
        return "ok"
    cells = [[_cell(v) for v in row] for row in result.rows]
    if not raw:
        for i in range(len(result.columns)):
            column = [r[i] for r in result.rows]
            if _numeric_column(column):
                show = _number_format(column)
                for r, v in zip(cells, column, strict=True):
                    r[i] = show(v)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    numeric = [_numeric_column([r[i] for r in result.rows]) for i in range(len(result.columns))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)).rstrip(),
        "-+-".join("-" * w for w in widths),
    ]
    for row in cells:
        parts = [v.rjust(w) if n else v.ljust(w) for v, w, n in zip(row, widths, numeric, strict=True)]
        lines.append(" | ".join(parts).rstrip())
    count = len(result.rows)
    more = f", showing the first {count}; add a LIMIT or use -c for all" if result.truncated else ""
    lines.append(f"({count} row{'' if count == 1 else 's'}{more})")
    return "\n".join(lines)


def format_csv(result: QueryResult) -> str:
    """The result as CSV with a header row (NULL as an empty field)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if result.columns:
        writer.writerow(result.columns)
        writer.writerows(["" if v is None else v for v in row] for row in result.rows)
    return buf.getvalue()


def describe_error(exc: duckdb.Error) -> str:
    """DuckDB's message, said plainly when the statement tried to write."""
    message = str(exc)
    if "read-only mode" in message:
        return f"read-only: the published marts cannot be changed here. {message}"
    if "disabled by configuration" in message or "configuration has been locked" in message:
        return f"not allowed in this read-only session. {message}"
    return message


def execute(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    out: TextIO,
    err: TextIO,
    as_csv: bool = False,
    max_rows: int | None = None,
    raw: bool = False,
) -> bool:
    """Run `sql` and print its result to `out` (or the error to `err`); True when it succeeded. Numbers
    are written for people unless `raw` or `as_csv`."""
    try:
        result = run_sql(con, sql, max_rows=max_rows)
    except duckdb.Error as exc:
        print(f"error: {describe_error(exc)}", file=err)
        return False
    except KeyboardInterrupt:
        con.interrupt()
        print("interrupted", file=err)
        return False
    text = format_csv(result) if as_csv else format_table(result, raw=raw)
    print(text, file=out, end="" if as_csv else "\n")
    return True


def list_tables(con: duckdb.DuckDBPyConnection) -> QueryResult:
    return run_sql(
        con,
        "select t.table_name as name, t.table_type as type, "
        "coalesce(split_part(d.comment, ' (key:', 1), '') as rows "
        "from information_schema.tables as t left join duckdb_tables() as d "
        "on d.database_name = t.table_catalog and d.schema_name = t.table_schema "
        "and d.table_name = t.table_name "
        "where t.table_schema = 'main' and t.table_catalog = current_database() order by t.table_name",
    )


def table_schema(con: duckdb.DuckDBPyConnection, table: str | None) -> QueryResult:
    """Columns of one table (or of all) of the marts. Raises MeterflowError for an unknown table."""
    columns = (
        "column_name, data_type, coalesce(comment, '') as comment from duckdb_columns() "
        "where schema_name = 'main' and database_name = current_database()"
    )
    if table is None:
        return run_sql(con, f"select table_name, {columns} order by table_name, column_index")
    cur = con.execute(f"select {columns} and table_name = ? order by column_index", [table])
    result = QueryResult(["column_name", "data_type", "comment"], cur.fetchall())
    if not result.rows:
        raise MeterflowError(f"no table named {table!r}; .tables lists them")
    return result


def dot_command(con: duckdb.DuckDBPyConnection, line: str, out: TextIO, err: TextIO) -> bool:
    """Handle a `.command`; False when the session should end."""
    name, _, rest = line.strip().partition(" ")
    arg = rest.strip().rstrip(";") or None
    if name in (".quit", ".exit", ".q"):
        return False
    try:
        if name == ".tables":
            print(format_table(list_tables(con)), file=out)
        elif name == ".schema":
            print(format_table(table_schema(con, arg)), file=out)
        elif name == ".help":
            print(HELP, file=out)
        else:
            print(f"error: unknown command {name}; .help lists the commands", file=err)
    except MeterflowError as exc:
        print(f"error: {exc}", file=err)
    return True


def history_path() -> Path:
    """Where readline keeps the session's history: $METERFLOW_SQL_HISTORY or ~/.meterflow_sql_history."""
    return Path(os.environ.get(HISTORY_ENV) or Path.home() / ".meterflow_sql_history")


def _load_history(path: Path) -> None:
    import readline

    readline.set_history_length(2000)
    if path.exists():
        readline.read_history_file(str(path))


def _save_history(path: Path) -> None:
    import readline

    path.parent.mkdir(parents=True, exist_ok=True)
    readline.write_history_file(str(path))


def _read_line(prompt: str, stdin: TextIO, interactive: bool) -> str:
    """The next input line. Raises EOFError at the end of the input."""
    if interactive:
        return input(prompt)
    line = stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def repl(
    con: duckdb.DuckDBPyConnection,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    history: Path | None = None,
    raw: bool = False,
) -> int:
    """Read statements until .quit or end of input; with a terminal, prompts and keeps readline history."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    interactive = stdin is sys.stdin and stdin.isatty()
    if interactive:
        history = history or history_path()
        _load_history(history)
        print("meterflow sql: read-only session on the published marts. .help for help.", file=out)
    buffer: list[str] = []
    try:
        while True:
            try:
                line = _read_line(CONTINUATION if buffer else PROMPT, stdin, interactive)
            except KeyboardInterrupt:
                buffer.clear()
                print(file=out)
                continue
            except EOFError:
                if buffer:
                    execute(con, "\n".join(buffer), out, err, max_rows=INTERACTIVE_MAX_ROWS, raw=raw)
                break
            if not buffer and line.strip().startswith("."):
                if not dot_command(con, line, out, err):
                    break
                continue
            if line.strip() or buffer:
                buffer.append(line)
            if buffer and "\n".join(buffer).rstrip().endswith(";"):
                execute(con, "\n".join(buffer), out, err, max_rows=INTERACTIVE_MAX_ROWS, raw=raw)
                buffer.clear()
    finally:
        if interactive and history is not None:
            _save_history(history)
    return 0


def run_shell(
    settings: Settings,
    query: str | None = None,
    as_csv: bool = False,
    marts: Path | None = None,
    raw: bool = False,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`meterflow sql`: run `query` and exit (1 when it failed), or start a session. Raises MeterflowError."""
    con = open_marts(settings, marts)
    try:
        if query is not None:
            ok = execute(con, query, out or sys.stdout, err or sys.stderr, as_csv=as_csv, raw=raw)
            return 0 if ok else 1
        return repl(con, stdin, out, err, raw=raw)
    finally:
        con.close()
