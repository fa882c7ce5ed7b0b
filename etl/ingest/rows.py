"""Row checks of one landing file, in DuckDB: physical lines -> CSV records -> typed rows or quarantine.

DuckDB reads the checked text of the file (etl.ingest.files) one physical line per row into table
`lines`, whose row ids are the line numbers (a plain scan into a table keeps the file's order); every
later step carries the line number as a column, because a join may emit rows in another order. Lines
join into records where a quoted field holds a line break (an odd number of quotes opens a record that
the next odd line closes), records split into fields (a fast string_split when a record has no quote,
a CSV grammar when it has), and one vectorised query types and checks every field. When no line has an
odd number of quotes (the usual case) lines are records. Blank lines are not records. Every record
after the header is one row of `rows in`: accepted (`staged` where _ok) or explained, one row per
record, in `quarantined`.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections import Counter
from dataclasses import dataclass, replace

import duckdb

from etl.contract import Column, Dataset
from etl.errors import ContractError
from etl.ingest.files import BOM, CR_STANDIN, TextCopy
from etl.periods import month_end, month_start
from etl.settings import LOCAL_TZ
from etl.timezone import fixed_offset_us, local_sql, session_zone

log = logging.getLogger(__name__)

# RFC 4180 fields: quoted (a quote inside doubled) or unquoted without quote or comma.
FIELD_RE = r'"(?:[^"]|"")*"|[^,"]*'
RECORD_RE = rf"(?:{FIELD_RE})(?:,(?:{FIELD_RE}))*"
SPLIT_RE = rf",({FIELD_RE})"  # over ',' || record: one match per field

INT_RE = r"[+-]?[0-9]{1,18}"
DECIMAL_RE = r"[+-]?([0-9]{1,12}(\.[0-9]{1,6})?|\.[0-9]{1,6})"
DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
PERIOD_RE = r"[0-9]{4}-(0[1-9]|1[0-2])"
LOCAL_TIMESTAMP_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
OFFSET_TIMESTAMP_RE = LOCAL_TIMESTAMP_RE + r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
# Local time is the company's time zone (CONTRACT.md §2, etl/timezone.py): Asia/Ho_Chi_Minh is UTC+07:00
# all year, converted with fixed arithmetic rather than the tz database, which gives Saigon +08:00 for
# 1959-1975 and local mean time before 1906.
DAY_US = 86_400_000_000
MAX_LINE_BYTES = 2 * 1024 * 1024  # DuckDB's default max_line_size; a longer line rejects the file

TYPE_WORDS = {
    "int": "an integer",
    "decimal": "a decimal number ('.' as decimal point, no thousands separator, "
    "at most 12 integer digits and 6 decimal places)",
    "date": "a date YYYY-MM-DD",
    "period": "a period YYYY-MM",
    "timestamp": "an ISO 8601 timestamp YYYY-MM-DDTHH:MM[:SS[.ffffff]] with an optional offset",
    "boolean": "true or false",
}
RANGE_WORDS = {
    "date": "before 1900-01-01 or after 2099-12-31",
    "period": "before 1900-01 or after 2099-12",
    "timestamp": "before 1900 or after 2099",
}


@dataclass(frozen=True)
class Layout:
    """How one file's header maps onto its dataset."""

    dataset: Dataset
    header_line: int
    positions: dict[str, int]  # contract column -> 1-based field position; absent optional columns omitted
    extras: tuple[tuple[str, int], ...]  # unknown columns: (name, position)
    n_fields: int
    zone: str = LOCAL_TZ  # the company's time zone: local times without offset are its wall time
    spare: str = "\x1f"  # a character absent from the file (TextCopy.delimiter), for splitting fields


@dataclass(frozen=True)
class RowCounts:
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    partitions: list[str]  # partition values of accepted rows (YYYY-MM), empty for reference datasets


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def check_rows(
    con: duckdb.DuckDBPyConnection,
    text: TextCopy,
    dataset: Dataset,
    label: str,
    chunk: int,
    line_map: str | None = None,
) -> tuple[Layout, RowCounts]:
    """Type and check every record after the header into relation `staged` and count them.

    `staged` has _line_no, the contract columns typed, _extra, _ok (accepted) and _bad_rec (the record as
    delivered, for rows not ok). DuckDB reads the text in buffers of `chunk` bytes. `line_map`: a table
    (line_no, source_line) that gives each line of a converted text the line of the file it comes from,
    which `staged` then numbers its records by. Raises ContractError when the file is rejected whole:
    empty, not parseable as CSV, or a header that does not fit the dataset.
    """
    first = _first_line(text, label)
    if first is None:
        raise ContractError(f"{label} is empty: no header and no accepted row")
    _load_lines(con, text, label, chunk)
    if first[1].count('"') % 2 == 0:
        layout = replace(
            layout_from_header(dataset, *first, label), zone=session_zone(con), spare=text.delimiter
        )
        _stage_lines(con, layout, text.has_quote, line_map)
        if not (text.has_quote and _has_open_quote(con)):
            con.execute("drop table lines")
            return layout, _counts(con, dataset)
        con.execute("drop table staged_rows")
    _join_records(con, label)
    header_line, rec = con.execute("select line_no, rec from records order by line_no limit 1").fetchone()  # type: ignore[misc]
    layout = replace(
        layout_from_header(dataset, header_line, rec, label), zone=session_zone(con), spare=text.delimiter
    )
    _stage_records(con, layout, line_map)
    return layout, _counts(con, dataset)


def _first_line(text: TextCopy, label: str) -> tuple[int, str] | None:
    """The first line that is not blank, with its line number; None when there is none.

    Raises ContractError when it is longer than MAX_LINE_BYTES.
    """
    with open(text.path, "rb") as fh:
        for number, raw in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise ContractError(
                    f"{label} cannot be parsed as CSV: line {number} is longer than {MAX_LINE_BYTES} bytes"
                )
            if number == 1:
                raw = raw.removeprefix(BOM)
            line = raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8")
            if line:
                return number, line.replace(CR_STANDIN.decode(), "\r")
    return None


def _load_lines(con: duckdb.DuckDBPyConnection, text: TextCopy, label: str, chunk: int) -> None:
    """Read the text one physical line per row into temp table `lines` (`_rec`, NULL for a blank line):
    row id + 1 is the line number.

    The text has LF line ends only: DuckDB 2.0's parallel reader fails on some LF files when told that
    lines end with CRLF, and takes any carriage return for a line break. Raises ContractError when
    DuckDB cannot read it.
    """
    line_size = min(MAX_LINE_BYTES, chunk)

    def sql(parallel: bool) -> str:
        read = (
            f"read_csv({lit(text.path.as_posix())}, columns = {{'line': 'VARCHAR'}}, header = false, "
            f"delim = {lit(text.delimiter)}, quote = '', escape = '', new_line = '\\n', "
            f"max_line_size = {line_size}, buffer_size = {chunk}, auto_detect = false, "
            f"strict_mode = false, parallel = {parallel})"
        )
        line = f"replace(line, chr({CR_STANDIN[0]}), chr(13))" if text.bare_cr else "line"
        return f"create or replace temp table lines as select {line} as _rec from {read}"

    try:
        try:
            con.execute(sql(True))
        except duckdb.NotImplementedException as exc:
            # DuckDB's parallel CSV reader gives up on some files it can read single-threaded.
            log.warning("%s: reading it again on one thread (%s)", label, str(exc).splitlines()[0])
            con.execute(sql(False))
    except duckdb.InvalidInputException as exc:
        message = str(exc)
        line = re.search(r"Line: (\d+)", message)
        if "aximum line size" in message and line:
            message = f"line {line[1]} is longer than {line_size} bytes"
        raise ContractError(f"{label} cannot be parsed as CSV: {message.splitlines()[0]}") from None


def _stage_lines(
    con: duckdb.DuckDBPyConnection, layout: Layout, has_quote: bool, line_map: str | None = None
) -> None:
    """The fast path, when no quoted field spans lines: every physical line is a row of `staged_rows`."""
    odd = "contains(_rec, '\"') and (strlen(_rec) - strlen(replace(_rec, '\"', ''))) % 2 = 1"
    con.execute(f"""
        create or replace temp table staged_rows as
        with numbered as (
            select rowid + 1 as _line_no, _rec, from lines
        ),
        source as ({_mapped("numbered", line_map)}),
        {_parse_ctes(layout, "source")},
        checked as (
            select _line_no, {_staged_columns(layout, line_map is not None)},
            from typed
        ),
        final as (
            select
                * exclude (_rec),
                case when not _ok then _rec end as _bad_rec,
                _rec is not null as _present,
                {odd if has_quote else "false"} as _odd,
            from checked
        )
        select * from final
    """)
    kept = "(select * exclude (_present, _odd) from staged_rows "
    kept += f"where _present and _line_no > {layout.header_line})"
    _numbered_view(con, kept, line_map is not None)


def _has_open_quote(con: duckdb.DuckDBPyConnection) -> bool:
    """True when some line has an odd number of quotes: a quoted field goes on to the next line."""
    return bool(con.execute("select bool_or(_odd) from staged_rows").fetchone()[0])  # type: ignore[index]


def _join_records(con: duckdb.DuckDBPyConnection, label: str) -> None:
    """Join the physical lines of `lines` into CSV records as relation `records` (line_no of the first
    line, rec).

    A line with an odd number of quotes opens a record that the next such line closes. Raises
    ContractError when a quote never closes.
    """
    con.execute("""
        create or replace temp table line_parity as
        with numbered as (
            select rowid + 1 as line_no, coalesce(_rec, '') as line, from lines
        ),
        counted as (
            select *, (strlen(line) - strlen(replace(line, '"', ''))) % 2 as odd, from numbered
        ),
        final as (
            select
                *,
                (sum(odd) over (order by line_no rows unbounded preceding) - odd) % 2 = 0 as starts,
            from counted
        )
        select * from final
    """)
    total, opened = con.execute(
        "select sum(odd) % 2, max(line_no) filter (where starts and odd = 1) from line_parity"
    ).fetchone()  # type: ignore[misc]
    if total:
        raise ContractError(
            f"{label} cannot be parsed as CSV: the quote opened on line {opened} never closes"
        )
    con.execute("""
        create or replace temp table joined_records as
        with grouped as (
            select *, sum(starts::int) over (order by line_no rows unbounded preceding) as record_id,
            from line_parity
        ),
        joined as (
            select min(line_no) as line_no, string_agg(line, chr(10) order by line_no) as rec,
            from grouped
            group by record_id
        )
        select * from joined where rec <> '' order by line_no
    """)
    con.execute("create or replace temp view records as select * from joined_records")


def _stage_records(con: duckdb.DuckDBPyConnection, layout: Layout, line_map: str | None = None) -> None:
    """The general path: type and check the joined records after the header into `staged`."""
    numbered = f"(select line_no as _line_no, rec as _rec from records where line_no > {layout.header_line})"
    con.execute(f"""
        create or replace temp table staged_records as
        with source as ({_mapped(numbered, line_map)}),
        {_parse_ctes(layout, "source")},
        checked as (
            select _line_no, {_staged_columns(layout, line_map is not None)},
            from typed
        ),
        final as (
            select * exclude (_rec), case when not _ok then _rec end as _bad_rec,
            from checked
        )
        select * from final
    """)
    _numbered_view(con, "staged_records", line_map is not None)


def _mapped(numbered: str, line_map: str | None) -> str:
    """SQL selecting relation `numbered` (_line_no, _rec) with, given a `line_map`, _source_line: the
    line of the source file the text's line comes from."""
    if line_map is None:
        return f"select * from {numbered}"
    return (
        f"select n.*, coalesce(m.source_line, n._line_no) as _source_line, "
        f"from {numbered} as n left join {line_map} as m on m.line_no = n._line_no"
    )


def _numbered_view(con: duckdb.DuckDBPyConnection, relation: str, mapped: bool) -> None:
    """View `staged` over the typed records of `relation`, numbered by their lines in the source file
    when `mapped` (they have _source_line)."""
    columns = "* exclude (_source_line) replace (_source_line as _line_no)" if mapped else "*"
    con.execute(f"create or replace temp view staged as select {columns} from {relation}")


def _staged_columns(layout: Layout, mapped: bool = False) -> str:
    """The typed contract columns, _extra, _ok and _rec, selected from `typed`; first _source_line when
    `mapped` (_mapped added it)."""
    cols = ["_source_line"] if mapped else []
    cols += [f"{q(c.name)}::{c.lake_type} as {q(c.name)}" for c in layout.dataset.columns]
    cols += [f"make_timestamp({q('_u_' + c)}) as {q(c + '_utc')}" for c in [layout.dataset.instant] if c]
    return ", ".join([*cols, "_extra", f"coalesce({_accepted_condition(layout)}, false) as _ok", "_rec"])


def _counts(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> RowCounts:
    rows_in, accepted = con.execute("select count(*), count(*) filter (where _ok) from staged").fetchone()  # type: ignore[misc]
    parts: list[str] = []
    if not dataset.is_reference:
        col = q(dataset.partition_by)
        # Group on the month start, not on text: formatting every row's month costs more than the rest.
        key = col if dataset.column(dataset.partition_by).type == "period" else f"date_trunc('month', {col})"
        months = con.execute(f"select distinct {key} as m from staged where _ok order by m").fetchall()
        parts = [m if isinstance(m, str) else m.strftime("%Y-%m") for (m,) in months]
    return RowCounts(rows_in, accepted, rows_in - accepted, parts)


def partition_filter(dataset: Dataset, value: str) -> tuple[str, list]:
    """SQL condition (and its parameters) selecting the accepted rows of partition `value` (YYYY-MM)."""
    col = dataset.column(dataset.partition_by)
    if col.type == "period":
        return f"_ok and {q(col.name)} = ?", [value]
    start, end = month_start(value), month_end(value)
    return f"_ok and {q(col.name)} >= ? and {q(col.name)} < ?", [start, end]


def split_record(rec: str) -> list[str] | None:
    """The fields of one CSV record (the grammar the SQL uses), or None when it is not valid CSV."""
    if re.fullmatch(RECORD_RE, rec) is None:
        return None
    return [f[1:-1].replace('""', '"') if f.startswith('"') else f for f in re.findall(SPLIT_RE, "," + rec)]


def _misspelt(names: list[str], missing: list[str], dataset: Dataset) -> str:
    """'; it has the unexpected column 'interval_minute': did you mean 'interval_minutes'?' for each
    column of the header the contract does not know that resembles a missing one, else ''."""
    unknown = [n for n in names if n not in dataset.column_names]
    guesses = []
    for name in unknown:
        close = difflib.get_close_matches(name.strip().lower(), missing, n=1, cutoff=0.75)
        if close:
            guesses.append(f"the unexpected column {name[:60]!r}: did you mean {close[0]!r}?")
        else:
            guesses.append(f"the unexpected column {name[:60]!r}")
    return "; it has " + "; ".join(guesses[:5]) if guesses else ""


def layout_from_header(dataset: Dataset, header_line: int, rec: str, label: str) -> Layout:
    """Check the header against the dataset and map its columns.

    Raises ContractError when the header is not CSV, lacks a required column or repeats a column name.
    """
    names = split_record(rec)
    if names is None:
        raise ContractError(f"{label} cannot be parsed as CSV: its header (line {header_line}) is not CSV")
    missing = [c for c in dataset.required_columns if c not in names]
    if missing:
        hint = ""
        if len(names) == 1:
            hint = f"; the header is one column {names[0][:120]!r}: is the file comma separated?"
        else:
            hint = _misspelt(names, missing, dataset)
        raise ContractError(
            f"{label}: the header (line {header_line}) lacks the required column(s) "
            f"{', '.join(missing)}{hint}"
        )
    repeated = [n for n, k in Counter(names).items() if k > 1]
    if repeated:
        where = [str(i + 1) for i, n in enumerate(names) if n == repeated[0]]
        raise ContractError(
            f"{label}: the column name {repeated[0]!r} repeats in the header on line {header_line} "
            f"(columns {', '.join(where[:-1])} and {where[-1]})"
        )
    known = set(dataset.column_names)
    return Layout(
        dataset=dataset,
        header_line=header_line,
        positions={n: i + 1 for i, n in enumerate(names) if n in known},
        extras=tuple((n, i + 1) for i, n in enumerate(names) if n not in known),
        n_fields=len(names),
    )


def _typed_first(c: Column, v: str, zone: str = LOCAL_TZ) -> str:
    """SQL typing raw field `v` of column `c` by its format alone (NULL when it is not that type).

    A timestamp column needs its instant `_z_<col>` (_offset_instant_us) computed before.
    """
    if c.type == "enum":
        return f"case when {v} in ({', '.join(map(lit, c.enum))}) then {v} end"
    if c.type == "int":
        # text that its cast reads back as is the common shape, which the regular expression would match
        common = f"strlen({v}) <= 18 and try_cast({v} as BIGINT)::VARCHAR = {v}"
        shaped = f"({common}) or regexp_full_match({v}, {lit(INT_RE)})"
        return f"case when {shaped} then try_cast({v} as BIGINT) end"
    if c.type == "decimal":
        return f"case when regexp_full_match({v}, {lit(DECIMAL_RE)}) then try_cast({v} as {c.lake_type}) end"
    if c.type == "date":
        common = f"strlen({v}) = 10 and try_cast({v} as DATE)::VARCHAR = {v}"
        shaped = f"({common}) or regexp_full_match({v}, {lit(DATE_RE)})"
        return f"case when {shaped} then try_cast({v} as DATE) end"
    if c.type == "period":
        return f"case when regexp_full_match({v}, {lit(PERIOD_RE)}) then {v} end"
    if c.type == "timestamp":
        return _typed_timestamp(v, q("_z_" + c.name), zone)
    if c.type == "boolean":
        return f"case {v} when 'true' then true when 'false' then false end"
    return v


def _offset_instant_us(v: str) -> str:
    """SQL for the instant (microseconds since 1970 UTC) of raw field `v` when it carries an offset.

    Computed once per field: the local value (_typed_timestamp) derives from it.
    """
    # the two common shapes without offset are told by a LIKE, before any regular expression
    common = f"{v} like '____-__-__T__:__:__' or {v} like '____-__-__ __:__:__'"
    offset = f"regexp_full_match({v}, {lit(OFFSET_TIMESTAMP_RE)})"
    return f"case when {common} then null when {offset} then epoch_us(try_cast({v} as TIMESTAMPTZ)) end"


def _typed_timestamp(v: str, instant: str, zone: str = LOCAL_TZ) -> str:
    """SQL typing raw field `v` as a local TIMESTAMP (NULL when it is not an ISO 8601 timestamp);
    `instant` is its instant when it carries an offset (_offset_instant_us).

    Most values have one of two shapes, which a LIKE, two comparisons and a strptime check for a
    fraction of the cost of the regular expressions (strptime alone would allow a space before the year
    or after the seconds, hence the comparisons); the rest go through the regular expressions. A DuckDB
    TIMESTAMP cast would drop an offset, so text with one is read as TIMESTAMPTZ (the instant) and shown
    as the wall time of `zone` at that instant.
    """
    digits_at_ends = f"{v} >= '0' and {v} < ':' and right({v}, 1) between '0' and '9'"
    common = (
        f"case when {v} like '____-__-__T__:__:__' and {digits_at_ends} "
        f"then try_strptime({v}, '%Y-%m-%dT%H:%M:%S') "
        f"when {v} like '____-__-__ __:__:__' and {digits_at_ends} "
        f"then try_strptime({v}, '%Y-%m-%d %H:%M:%S') end"
    )
    general = (
        f"case when {instant} is not null then {local_sql(f'make_timestamp({instant})', zone)} "
        f"when regexp_full_match({v}, {lit(LOCAL_TIMESTAMP_RE)}) then try_cast({v} as TIMESTAMP) end"
    )
    return f"coalesce({common}, {general})"


def _in_range(c: Column, t: str) -> str:
    """SQL keeping typed value `t` of column `c` only within 1900-2099."""
    if c.type == "date":
        return f"case when {t} between DATE '1900-01-01' and DATE '2099-12-31' then {t} end"
    if c.type == "period":
        return f"case when {t} between '1900-01' and '2099-12' then {t} end"
    if c.type == "timestamp":
        return f"case when {t} >= TIMESTAMP '1900-01-01' and {t} < TIMESTAMP '2100-01-01' then {t} end"
    return t


def _parse_ctes(layout: Layout, source: str) -> str:
    """CTEs over `source` (_rec and any other columns, passed through) ending in `typed`: _syntax_ok,
    _n_fields, raw fields _v_<col>, typed _t0_<col> (format) and <col> (format and range), _extra; for a
    timestamp column also _u_<col>, its UTC instant in microseconds (NULL for a local time that does
    not exist in the company's zone, which leaves <col> NULL as well).

    Internal names start with `_`, which no contract column does.
    """
    raw, first, typed, instants = [], [], [], []
    stamps = [c for c in layout.dataset.columns if c.type == "timestamp"]
    for c in layout.dataset.columns:
        pos = layout.positions.get(c.name)
        value = f"nullif(_f[{pos}], '')" if pos else "null::VARCHAR"
        raw.append(f"{value} as {q('_v_' + c.name)}")
        first.append(f"{_typed_first(c, q('_v_' + c.name), layout.zone)} as {q('_t0_' + c.name)}")
        t = _in_range(c, q("_t0_" + c.name))
        if c.type == "timestamp":
            t = f"case when {q('_u_' + c.name)} is not null then {t} end"
        if c.default is not None:
            t = f"case when {q('_v_' + c.name)} is null then {lit(c.default)} else {t} end"
        typed.append(f"{t} as {q(c.name)}")
    for c in stamps:
        instants.append(f"{_offset_instant_us(q('_v_' + c.name))} as {q('_z_' + c.name)}")
    if layout.extras:
        pairs = ", ".join(f"{lit(name)}, nullif(_f[{pos}], '')" for name, pos in layout.extras)
        raw.append(f"json_object({pairs})::VARCHAR as _extra")
    else:
        raw.append("null::VARCHAR as _extra")
    unquote = (
        "list_transform(regexp_extract_all(',' || _rec, {split}, 1), lambda x: "
        "case when starts_with(x, '\"') then replace(x[2:-2], '\"\"', '\"') else x end)"
    )
    # Without a doubled quote, the pieces between quotes alternate outside and inside a quoted field:
    # commas inside become the spare character, the quotes go, and a plain split finds the fields.
    spare = lit(layout.spare)
    inside = f"lambda p, i: case when i % 2 = 0 then replace(p, ',', {spare}) else p end"
    unquoted = f"array_to_string(list_transform(string_split(_rec, '\"'), {inside}), '')"
    unquote_simple = f"list_transform(string_split({unquoted}, ','), lambda x: replace(x, {spare}, ','))"
    return f"""
        split as (
            select
                *,
                case
                    when not contains(_rec, '"') then string_split(_rec, ',')
                    when not regexp_full_match(_rec, {lit(RECORD_RE)}) then null
                    when not contains(_rec, '""') and not contains(_rec, {spare}) then {unquote_simple}
                    else {unquote.format(split=lit(SPLIT_RE))}
                end as _f,
            from {source}
        ),
        parsed as (
            select
                * exclude (_f),
                _f is not null as _syntax_ok,
                coalesce(len(_f), 0) as _n_fields,
                {", ".join(raw)},
            from split
        ),
        instants as (
            select *, {"".join(i + ", " for i in instants)}
            from parsed
        ),
        first_typed as (
            select *, {", ".join(first)},
            from instants
        ),
        {_zone_ctes(layout, stamps, "first_typed")},
        typed as (
            select *, {", ".join(typed)},
            from zoned
        )"""


def _zone_ctes(layout: Layout, stamps: list[Column], source: str) -> str:
    """CTEs over `source` ending in `zoned`, which adds _u_<col>: the UTC instant (microseconds) of each
    timestamp column (CONTRACT.md §2).

    Text with an offset is that instant. A local time in a zone with a fixed offset is one instant. In
    a zone with daylight saving a local time L is checked against the offsets a day before and a day
    after (no zone changes twice within two days): each gives a candidate instant, kept when its wall
    time is L again. No candidate: the skipped hour, NULL. Two: the repeated hour, the earlier instant
    the first time L appears for a key in the file and the later one after that.
    """
    fixed = fixed_offset_us(layout.zone)
    if not stamps:
        return f"zoned as (select * from {source})"
    if fixed is not None:
        cols = ", ".join(
            f"coalesce({q('_z_' + c.name)}, epoch_us({q('_t0_' + c.name)}) - {fixed}) as {q('_u_' + c.name)}"
            for c in stamps
        )
        return f"zoned as (select *, {cols}, from {source})"

    def local_us(instant_us: str) -> str:
        return f"epoch_us({local_sql(f'make_timestamp({instant_us})', layout.zone)})"

    lookups, ambiguous, joins, resolved = [], [], [], []
    key_parts = []
    for k in layout.dataset.key:
        col = layout.dataset.column(k)
        if col.type != "timestamp":
            key = q("_t0_" + k)
            key_parts.append(f"coalesce({key}, {lit(col.default)})" if col.default is not None else key)
    for i, c in enumerate(stamps):
        t0, z = q("_t0_" + c.name), q("_z_" + c.name)
        lk, a, b, rn = (q(f"_{n}_{c.name}") for n in ("lk", "a", "b", "rn"))
        # the candidates of each distinct local time once: a file repeats the same few hundred times
        lookups.append(f"""
        zone_values_{i} as (
            select distinct {t0} as {lk},
            from {source}
            where {z} is null and {t0} is not null
        ),
        zone_local_{i} as (
            select
                {lk},
                epoch_us({lk}) as _l,
                epoch_us(timezone('UTC', timezone({lit(layout.zone)}, {lk}))) as _u0,
            from zone_values_{i}
        ),
        zone_candidates_{i} as (
            select
                *,
                _l - ({local_us(f"_u0 - {DAY_US}")} - (_u0 - {DAY_US})) as _c1,
                _l - ({local_us(f"_u0 + {DAY_US}")} - (_u0 + {DAY_US})) as _c2,
            from zone_local_{i}
        ),
        zone_map_{i} as (
            select
                {lk},
                case when {local_us("_c1")} = _l then _c1 end as {a},
                case when {local_us("_c2")} = _l then _c2 end as {b},
            from zone_candidates_{i}
        )""")
        joins.append(f"left join zone_map_{i} on {t0} = zone_map_{i}.{lk}")
        partition = ", ".join([*key_parts, t0])
        ambiguous.append(f"""
        ambiguous_{i} as (
            select _line_no, row_number() over (partition by {partition} order by _line_no) as {rn},
            from zone_checked
            where {z} is null and {a} <> {b}
        )""")
        resolved.append(
            f"coalesce({z}, case when {a} <> {b} then case when {rn} = 1 then least({a}, {b}) "
            f"else greatest({a}, {b}) end else coalesce({a}, {b}) end) as {q('_u_' + c.name)}"
        )
    rank_joins = " ".join(f"left join ambiguous_{i} using (_line_no)" for i in range(len(stamps)))
    mapped = ", ".join(f"zone_map_{i}.* exclude ({q('_lk_' + c.name)})" for i, c in enumerate(stamps))
    return f"""
        {",".join(lookups)},
        zone_checked as (
            select {source}.*, {mapped},
            from {source}
            {" ".join(joins)}
        ),
        {",".join(ambiguous)},
        zoned as (
            select zone_checked.*, {", ".join(resolved)},
            from zone_checked
            {rank_joins}
        )"""


def _accepted_condition(layout: Layout) -> str:
    parts = [f"_n_fields = {layout.n_fields}"]
    for c in layout.dataset.columns:
        if c.required:
            parts.append(f"{q(c.name)} is not null")
        else:
            parts.append(f"({q('_v_' + c.name)} is null or {q(c.name)} is not null)")
    parts += [f"not coalesce({rule.breaks}, false)" for rule in layout.dataset.extra_rules]
    return " and ".join(parts)


def _show(v: str) -> str:
    """SQL for a raw value as a person reads it in a reason: quoted, or 'empty'."""
    return f"coalesce('''' || left({v}, 200) || '''', 'empty')"


def _column_checks(c: Column, zone: str = LOCAL_TZ) -> list[tuple[str, str, str]]:
    """(code, condition, reason SQL) for the field checks of one column, in the order they apply."""
    v, t0, t = q("_v_" + c.name), q("_t0_" + c.name), q(c.name)
    has = f"'column {c.name} has ' || {_show(v)}"
    out = []
    if c.required:
        out.append(("required", f"{v} is null", lit(f"column {c.name} is empty but required")))
    if c.type == "enum":
        words = lit(f", which is not one of {', '.join(c.enum)}")
        out.append(("enum", f"{v} is not null and {t0} is null", f"{has} || {words}"))
    elif c.type in TYPE_WORDS:
        words = lit(f", which is not {TYPE_WORDS[c.type]}")
        out.append(("type", f"{v} is not null and {t0} is null", f"{has} || {words}"))
    in_range = f"{_in_range(c, t0)} is not null"
    if c.type in RANGE_WORDS:
        words = lit(f", which is {RANGE_WORDS[c.type]}")
        out.append(("range", f"{t0} is not null and not {in_range}", f"{has} || {words}"))
    if c.type == "timestamp":
        words = lit(f", a local time that does not exist in {zone} (the hour the clocks skip)")
        out.append(("nonexistent_time", f"{in_range} and {t} is null", f"{has} || {words}"))
    return out


def quarantine_rows(con: duckdb.DuckDBPyConnection, layout: Layout) -> None:
    """Explain every record of `staged` that is not ok into temp table `quarantined`
    (line_no, rule, reason, record), one row per record."""
    checks = [chk for c in layout.dataset.columns for chk in _column_checks(c, layout.zone)]
    for rule in layout.dataset.extra_rules:
        shown = " || ' and ' || ".join(f"'{col} is ' || {_show(q('_v_' + col))}" for col in rule.shows)
        breaks = lit(f", which breaks the rule {rule.text}")
        checks.append((rule.code, f"coalesce({rule.breaks}, false)", f"{shown} || {breaks}"))
    codes = ", ".join(f"case when {cond} then {lit(code)} end" for code, cond, _ in checks)
    reasons = ", ".join(f"case when {cond} then {reason} end" for _, cond, reason in checks)
    n = layout.n_fields
    bad_csv = lit(
        "the line is not valid CSV: a quote inside an unquoted field, or text after a closing quote"
    )
    source = "(select _line_no, _bad_rec as _rec from staged where not _ok)"
    con.execute(f"""
        create or replace temp table quarantined as
        with {_parse_ctes(layout, source)},
        final as (
            select
                _line_no as line_no,
                case
                    when not _syntax_ok then 'csv_syntax'
                    when _n_fields <> {n} then 'field_count'
                    else coalesce({codes})
                end as rule,
                case
                    when not _syntax_ok then {bad_csv}
                    when _n_fields <> {n} then 'the line has ' || _n_fields || ' fields, the header has {n}'
                    else concat_ws('; ', {reasons})
                end as reason,
                _rec as record,
            from typed
        )
        select * from final order by line_no
    """)


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Free the temp relations of the previous file."""
    for view in ("staged", "records"):
        con.execute(f"drop view if exists {view}")
    for table in ("quarantined", "staged_rows", "staged_records", "joined_records", "line_parity", "lines"):
        con.execute(f"drop table if exists {table}")
