"""The analysts' data dictionary, docs/marts.md, generated from the mart models themselves.

Each `sql/marts/mart_*.sql` opens with a header comment that states its grain and key
(`-- one row per ... (key: a, b)...`) and documents every output column of its `final` step with a comment
line just above it: `-- column_name: definition (unit)`. This module reads those comments, checks that
each one sits above the column it names, and writes the Markdown page; a test fails when the checked-in
page differs from what the models say.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from etl.contract import MART_COLUMNS
from etl.errors import MeterflowError
from etl.lake import write_atomic
from etl.models import SQL_DIR

log = logging.getLogger(__name__)

MARTS_SQL_DIR = SQL_DIR / "marts"
DICTIONARY_PATH = SQL_DIR.parent / "docs" / "marts.md"

_COLUMN_DOC = re.compile(r"^\s*--\s*([a-z_][a-z0-9_]*)\s*:\s*(.+?)\s*$")
_UNIT = re.compile(r"^(.*?)\s*\(([^()]*)\)$")
_KEY = re.compile(r"\(key:\s*([^)]*)\)")
_FINAL = re.compile(r"^\s*final\s+as\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnDoc:
    """One output column of a mart: its name, what it means and its unit."""

    name: str
    definition: str
    unit: str


@dataclass(frozen=True)
class MartDoc:
    """One mart: its grain, key, the rest of its header, and its documented columns in output order."""

    name: str
    grain: str
    key: str
    notes: str
    columns: tuple[ColumnDoc, ...]


def parse_model(path: Path) -> MartDoc:
    """Read a mart's header and column comments. Raises MeterflowError when one is missing or misplaced."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = _header(lines)
    if not header:
        raise MeterflowError(f"{path.name}: no header comment stating the grain and key")
    grain, key, notes = _split_header(header)
    if not key:
        raise MeterflowError(f"{path.name}: the header names no key, e.g. '(key: period, region_code)'")
    columns = _columns(lines, path.name)
    if not columns:
        raise MeterflowError(f"{path.name}: no '-- column: definition (unit)' comment in its final step")
    return MartDoc(path.stem, grain, key, notes, tuple(columns))


def _header(lines: list[str]) -> str:
    """The leading comment lines, joined into one text."""
    out = []
    for line in lines:
        if not line.strip().startswith("--"):
            break
        out.append(line.strip()[2:].strip())
    return " ".join(t for t in out if t)


def _split_header(header: str) -> tuple[str, str, str]:
    """(grain, key, notes) of a header like 'one row per period and region (key: period, region_code)'."""
    match = _KEY.search(header)
    if not match:
        grain, _, notes = header.partition(". ")
        return grain.strip(" ."), "", notes.strip()
    grain = header[: match.start()].strip(" .,;")
    notes = header[match.end() :].lstrip(" .,;").rstrip()
    first_word = notes.split(" ", 1)[0]
    if "_" not in first_word:  # a sentence, not a column name, starts the notes
        notes = notes[:1].upper() + notes[1:]
    if notes and notes[-1] not in ".!?":
        notes += "."
    return grain, match.group(1).strip(), notes


def _columns(lines: list[str], file_name: str) -> list[ColumnDoc]:
    """The column comments of the model's `final` step (of the whole model when it has none)."""
    start = next((i for i, line in enumerate(lines) if _FINAL.match(line)), 0)
    body = lines[start:]
    out = []
    for i, line in enumerate(body):
        match = _COLUMN_DOC.match(line)
        if not match:
            continue
        name, text = match.groups()
        if not _names_column(body[i + 1 :], name):
            raise MeterflowError(f"{file_name}: the comment for {name!r} is not above the column {name}")
        unit_match = _UNIT.match(text)
        definition, unit = unit_match.groups() if unit_match else (text, "")
        out.append(ColumnDoc(name, definition.strip(), unit.strip()))
    return out


def _names_column(following: list[str], name: str) -> bool:
    """True when the SQL after a column comment, up to the next comment, ends by naming `name`."""
    code = []
    for line in following:
        if line.strip().startswith("--") or re.match(r"\s*from\b", line, re.IGNORECASE):
            break
        code.append(line.strip())
        if line.rstrip().endswith(","):
            break
    text = " ".join(code).rstrip(",").strip()
    return re.search(rf"(^|[\s.]){re.escape(name)}$", text) is not None


def load_marts(sql_dir: Path = MARTS_SQL_DIR) -> list[MartDoc]:
    """Every mart model under `sql_dir`, by name. Raises MeterflowError when a model is undocumented."""
    files = sorted(sql_dir.glob("mart_*.sql"))
    if not files:
        raise MeterflowError(f"no mart models under {sql_dir}")
    return [_with_region_name(parse_model(p)) for p in files]


# Publishing adds region_name after the last column of every mart with a region_code
# (etl.marts.publish.add_region_names), from the optional regions reference snapshots.
REGION_NAME = ColumnDoc(
    "region_name",
    "the region's name in the newest regions snapshot; the code where no snapshot names it, 'ALL' for the "
    "company",
    "text",
)


def _with_region_name(mart: MartDoc) -> MartDoc:
    names = [c.name for c in mart.columns]
    if "region_code" not in names or "region_name" in names:
        return mart
    return replace(mart, columns=(*mart.columns, REGION_NAME))


def _md(text: str) -> str:
    """Text safe inside Markdown (and a table cell): no pipe, no angle bracket read as HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(marts: list[MartDoc]) -> str:
    """The data dictionary as Markdown."""
    out = [
        "# The published marts: data dictionary",
        "",
        "<!-- Generated by `meterflow dictionary` from the comments in sql/marts/*.sql; edit those, not this"
        " page. -->",
        "",
        "The marts are tables in `warehouse/marts.duckdb` under the data home, replaced as a whole on each "
        "publish. Open them read-only: `meterflow sql`, or `duckdb.connect(path, read_only=True)`. "
        "Percentages are 0-100; figures are stored unrounded (kWh and VND as exact decimals); "
        "`region_code = 'ALL'` is the whole company; periods are `'YYYY-MM'` text. No mart holds "
        "personal data. Columns marked *contract* are stable (the data contract lists them); the others "
        "may grow. The same texts are in the marts file as DuckDB comments (`COMMENT ON`; `comment` in "
        "`duckdb_columns()` and `duckdb_tables()`). Worked questions: [analysts.md](analysts.md).",
        "",
    ]
    for mart in marts:
        out.append(f"- [`{mart.name}`](#{mart.name}): {_md(mart.grain)}")
    for mart in marts:
        stable = set(MART_COLUMNS.get(mart.name, ()))
        out += [
            "",
            f"## {mart.name}",
            "",
            f"**Grain:** {_md(mart.grain)}.  ",
            f"**Key:** {', '.join(f'`{k.strip()}`' for k in mart.key.split(','))}.",
        ]
        if mart.notes:
            out += ["", _md(mart.notes)]
        out += ["", "| column | definition | unit | contract |", "|---|---|---|---|"]
        for col in mart.columns:
            mark = "yes" if col.name in stable else ""
            out.append(f"| `{col.name}` | {_md(col.definition)} | {_md(col.unit)} | {mark} |")
    return "\n".join(out) + "\n"


def undocumented_contract_columns(marts: list[MartDoc]) -> dict[str, list[str]]:
    """Per mart, the contract's columns that the model does not document (the contract's marts included)."""
    documented = {m.name: {c.name for c in m.columns} for m in marts}
    missing = {}
    for name, columns in MART_COLUMNS.items():
        absent = [c for c in columns if c not in documented.get(name, set())]
        if absent:
            missing[name] = absent
    return missing


def write_dictionary(out: Path = DICTIONARY_PATH, sql_dir: Path = MARTS_SQL_DIR) -> Path:
    """Regenerate the data dictionary at `out`. Raises MeterflowError when a model is undocumented."""
    text = render_markdown(load_marts(sql_dir))
    write_atomic(out, text)
    log.info("wrote the data dictionary to %s", out)
    return out


def table_comment(mart: MartDoc) -> str:
    """A mart's dictionary text as its DuckDB table comment: grain, key and notes."""
    return " ".join(
        part for part in (f"{mart.grain[:1].upper()}{mart.grain[1:]} (key: {mart.key}).", mart.notes) if part
    )


def column_comment(column: ColumnDoc) -> str:
    """A column's dictionary text as its DuckDB column comment: definition and unit."""
    return f"{column.definition} ({column.unit})" if column.unit else column.definition


def comment_on(con: duckdb.DuckDBPyConnection, marts: list[MartDoc] | None = None) -> int:
    """Write the dictionary into the open database as `COMMENT ON` its mart tables and their columns (of
    the tables and columns it holds); returns the number of comments written."""
    present = {
        (t, c)
        for t, c in con.execute(
            "select table_name, column_name from duckdb_columns() where database_name = current_database()"
        ).fetchall()
    }
    tables = {t for t, _c in present}
    written = 0
    for mart in marts if marts is not None else load_marts():
        if mart.name not in tables:
            continue
        con.execute(f'comment on table "{mart.name}" is {_literal(table_comment(mart))}')
        written += 1
        for column in mart.columns:
            if (mart.name, column.name) in present:
                con.execute(
                    f'comment on column "{mart.name}"."{column.name}" is {_literal(column_comment(column))}'
                )
                written += 1
    return written


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
