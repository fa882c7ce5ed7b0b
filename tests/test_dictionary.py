"""The data dictionary: parsed from the mart models' comments, and docs/marts.md kept in step with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.contract import MART_COLUMNS
from etl.dictionary import (
    DICTIONARY_PATH,
    ColumnDoc,
    load_marts,
    parse_model,
    render_markdown,
    undocumented_contract_columns,
    write_dictionary,
)
from etl.errors import MeterflowError
from etl.settings import Settings

MODEL = """\
-- one row per period and widget (key: period, widget_id); widgets the
-- catalogue no longer lists are 'UNKNOWN'.
with

source as (
    -- note: an import CTE, not an output column
    select * from aggregates_widgets
),

final as (
    select
        -- period: billing period, 'YYYY-MM' (text)
        period,
        -- widget_id: the widget (text)
        s.widget_id,
        -- kwh_sold: kWh of the lines (a | b) (kWh)
        sum(kwh) as kwh_sold,
        -- share_pct: (kwh_sold / all - 1) x 100; NULL without history (%)
        case
            when x then (kwh_sold / total - 1) * 100
        end as share_pct,
        -- note_text: free text with no unit
        note_text
    from source
)

select * from final
"""


def _write(tmp_path: Path, text: str, name: str = "mart_widgets.sql") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_model_reads_grain_key_notes_and_columns(tmp_path: Path) -> None:
    mart = parse_model(_write(tmp_path, MODEL))
    assert mart.name == "mart_widgets"
    assert mart.grain == "one row per period and widget"
    assert mart.key == "period, widget_id"
    assert mart.notes == "Widgets the catalogue no longer lists are 'UNKNOWN'."
    assert mart.columns == (
        ColumnDoc("period", "billing period, 'YYYY-MM'", "text"),
        ColumnDoc("widget_id", "the widget", "text"),
        ColumnDoc("kwh_sold", "kWh of the lines (a | b)", "kWh"),
        ColumnDoc("share_pct", "(kwh_sold / all - 1) x 100; NULL without history", "%"),
        ColumnDoc("note_text", "free text with no unit", ""),
    )


def test_render_markdown_lists_each_column_with_its_unit(tmp_path: Path) -> None:
    text = render_markdown([parse_model(_write(tmp_path, MODEL))])
    assert "- [`mart_widgets`](#mart_widgets): one row per period and widget" in text
    assert "**Grain:** one row per period and widget.  \n**Key:** `period`, `widget_id`." in text
    assert "| `kwh_sold` | kWh of the lines (a \\| b) | kWh |  |" in text
    assert "| `share_pct` | (kwh_sold / all - 1) x 100; NULL without history | % |  |" in text


def test_contract_columns_are_marked(tmp_path: Path) -> None:
    model = MODEL.replace("widget_id", "region_code")
    text = render_markdown([parse_model(_write(tmp_path, model, "mart_sales_monthly.sql"))])
    assert "| `region_code` | the widget | text | yes |" in text
    assert "| `note_text` | free text with no unit |  |  |" in text


def test_a_comment_away_from_its_column_is_an_error(tmp_path: Path) -> None:
    model = MODEL.replace("-- widget_id: the widget (text)", "-- widget_code: the widget (text)")
    with pytest.raises(MeterflowError, match="comment for 'widget_code' is not above the column"):
        parse_model(_write(tmp_path, model))


def test_a_model_without_key_or_column_comments_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MeterflowError, match="names no key"):
        parse_model(_write(tmp_path, MODEL.replace("(key: period, widget_id)", "")))
    with pytest.raises(MeterflowError, match="no header comment"):
        parse_model(_write(tmp_path, "select 1 as x\n"))
    with pytest.raises(MeterflowError, match="no '-- column: definition"):
        parse_model(_write(tmp_path, "-- one row per x (key: x)\nselect 1 as x\n"))
    with pytest.raises(MeterflowError, match="no mart models"):
        load_marts(tmp_path / "nowhere")


def test_write_dictionary_from_a_folder_of_models(tmp_path: Path) -> None:
    sql_dir = tmp_path / "marts"
    sql_dir.mkdir()
    _write(sql_dir, MODEL)
    out = write_dictionary(tmp_path / "docs" / "marts.md", sql_dir)
    assert out.read_text(encoding="utf-8") == render_markdown(load_marts(sql_dir))


def test_every_contract_column_of_every_mart_is_documented() -> None:
    marts = load_marts()
    assert {m.name for m in marts} >= set(MART_COLUMNS)
    assert undocumented_contract_columns(marts) == {}


def test_checked_in_dictionary_is_up_to_date() -> None:
    expected = render_markdown(load_marts())
    actual = DICTIONARY_PATH.read_text(encoding="utf-8") if DICTIONARY_PATH.exists() else ""
    assert actual == expected, "docs/marts.md is out of date with sql/marts/*.sql: run `meterflow dictionary`"


def test_cli_dictionary_writes_the_page(tmp_path: Path) -> None:
    from etl.cli import main

    out = tmp_path / "marts.md"
    assert main(["--home", str(tmp_path), "dictionary", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_markdown(load_marts())


def test_dictionary_matches_the_marts_a_pipeline_publishes(generated_company: Settings) -> None:
    from etl.duck import connect

    con = connect(generated_company, generated_company.marts_path, read_only=True)
    try:
        for mart in load_marts():
            published = [r[0] for r in con.execute(f"describe {mart.name}").fetchall()]
            assert [c.name for c in mart.columns] == published, mart.name
    finally:
        con.close()
