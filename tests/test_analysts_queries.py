"""Every SQL answer in docs/analysts.md runs on published marts: it returns rows with the columns it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etl.duck import connect
from etl.settings import Settings

ANALYSTS_MD = Path(__file__).resolve().parent.parent / "docs" / "analysts.md"
BLOCK = re.compile(r"```sql\n(.*?)```\s*\n+Returns:([^\n]*)\n", re.S)


def analysts_queries() -> list[tuple[str, str, list[str]]]:
    """(heading, sql, returned columns) for each ```sql block of docs/analysts.md."""
    text = ANALYSTS_MD.read_text(encoding="utf-8")
    out = []
    for match in BLOCK.finditer(text):
        heading = re.findall(r"^## (.+)$", text[: match.start()], re.M)[-1]
        out.append((heading, match.group(1), re.findall(r"`([a-z_0-9]+)`", match.group(2))))
    return out


QUERIES = analysts_queries()


def test_the_page_answers_twelve_questions_each_with_its_columns() -> None:
    assert len(QUERIES) == 12
    assert len(re.findall(r"```sql", ANALYSTS_MD.read_text(encoding="utf-8"))) == 12
    for heading, _sql, columns in QUERIES:
        assert columns, heading


IDS = [q[0][:2].strip(". ") for q in QUERIES]


@pytest.mark.parametrize(("heading", "sql", "columns"), QUERIES, ids=IDS)
def test_query_runs_on_a_generated_company(
    generated_company: Settings, heading: str, sql: str, columns: list[str]
) -> None:
    names, rows = _run(generated_company, sql)
    assert names == columns, heading
    assert rows, heading


@pytest.mark.parametrize(("heading", "sql", "columns"), QUERIES, ids=IDS)
def test_query_runs_on_the_hand_made_marts(
    fixture_marts_home: Path, heading: str, sql: str, columns: list[str]
) -> None:
    names, rows = _run(Settings(home=fixture_marts_home, threads=1, memory_limit="512MB"), sql)
    assert names == columns, heading
    assert rows, heading


def _run(settings: Settings, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    con = connect(settings, settings.marts_path, read_only=True)
    try:
        cur = con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()
