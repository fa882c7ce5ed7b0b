"""NEM12 (AEMO interval meter data) -> interval_reads, in DuckDB over the file's lines (CONTRACT.md §8,
docs/sources.md).

Records: every interval value of a well-formed 300 record is one record (accepted, or quarantined: an
unsupported channel or unit, an N (null) reading, a V interval no 400 record covers, a negative value on
an import channel); a 300 record that cannot be read (wrong number of values, bad date or quality, no 200
record before it) is one record quarantined whole; so is a line of no known record type and a 400 record
outside its day. 100, 200, 500 and 900 records describe the data and are not records themselves.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from etl.sources.core import Conversion, Member, quarantine_table

NUMBER_RE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
QUALITY_RE = r"[AEFNSV][0-9]*"
VALUES_RE = rf"\s*{NUMBER_RE}\s*(,\s*{NUMBER_RE}\s*)*"  # the values of a 300 record, joined by commas
PLAIN_KWH_RE = r"[0-9]{1,12}(\.[0-9]{1,6})?"  # kWh as the contract CSV takes it, passed on as written
PLAIN_VALUES_RE = rf"{PLAIN_KWH_RE}(,{PLAIN_KWH_RE})*"  # a 300 record whose values all pass as written
ACTIVE_UNITS = {"WH": "0.001", "KWH": "1", "MWH": "1000"}
REACTIVE_UNITS = {"VARH": "0.001", "KVARH": "1", "MVARH": "1000"}
CHANNELS = {"E": "ACTIVE_IMPORT", "B": "ACTIVE_EXPORT", "Q": "REACTIVE_IMPORT", "K": "REACTIVE_EXPORT"}
BATCH_ROWS = 1024
STRUCTURE = ("100", "200", "300", "400", "500", "900")

# The contract rows of the accepted values (selected straight into Arrow, without a table of their own).
ROWS_SQL = """
    select
        r.meter_id,
        r.channel,
        r.day_text || v.t as interval_start,
        r.ilen_out as interval_minutes,
        case
            when r.plain and r.factor = '1' then v.v
            else round(abs(v.v::DECIMAL(38, 14)) * r.factor::DECIMAL(10, 3), 6)::DECIMAL(18, 6)::VARCHAR
        end as kwh,
        case when v.flag = 'A' then 'A' else 'E' end as quality,
        v.line_no as _line,
    from nem_values v join nem_300 r using (line_no)
    where v.problem is null
"""


def convert(con: duckdb.DuckDBPyConnection, members: list[Member], label: str) -> Conversion:
    """Convert the NEM12 members of one source file (line numbers run on through the members)."""
    warnings: list[str] = []
    offset = 0
    numbers, texts = [], []
    for member in members:
        lines = member.text.split("\n")
        warnings += _structure_warnings(lines, member.where(label), offset)
        numbers.append(pa.array(range(offset + 1, offset + len(lines) + 1), pa.int64()))
        texts.append(pa.array(lines, pa.large_string()))
        offset += len(lines)
    source = pa.Table.from_arrays([pa.chunked_array(numbers), pa.chunked_array(texts)], ["line_no", "line"])
    try:
        _register_batched(con, "nem_source", source)
        _records(con)
        rows = con.sql(ROWS_SQL).to_arrow_table()
        bad = con.execute("select * from nem_bad order by line_no, _ord").fetchall()
    finally:
        for table in ("nem_h", "nem_values", "nem_bad"):
            con.execute(f"drop table if exists {table}")
        for view in ("nem_source", "nem_lines", "nem_300"):
            con.unregister(view)
    quarantined = quarantine_table([(r[0], r[1], r[2], r[3]) for r in bad])
    return Conversion("NEM12", "interval_reads", rows, quarantined, warnings)


def _structure_warnings(lines: list[str], where: str, offset: int) -> list[str]:
    """A missing 100 header or 900 trailer, and more than one 900, are warnings; the data is read."""
    kinds = [(i + 1 + offset, line.split(",", 1)[0].strip()) for i, line in enumerate(lines) if line.strip()]
    if not kinds:
        return []
    out = []
    if kinds[0][1] != "100":
        out.append(f"{where}: no 100 header record (line {kinds[0][0]} is a {kinds[0][1]} record)")
    ends = [n for n, kind in kinds if kind == "900"]
    if not ends:
        out.append(f"{where}: no 900 end-of-data record")
    elif len(ends) > 1:
        out.append(f"{where}: {len(ends)} end-of-data (900) records, on lines {', '.join(map(str, ends))}")
    return out


def _case(mapping: dict[str, str], expr: str) -> str:
    whens = " ".join(f"when '{k}' then '{v}'" for k, v in mapping.items())
    return f"case {expr} {whens} end"


def _records(con: duckdb.DuckDBPyConnection) -> None:
    """nem_300 (300 records), nem_values (their values, with the problem of each) and nem_bad (line_no,
    rule, reason, record, _ord); ROWS_SQL selects the contract rows from them."""
    units = _case({**ACTIVE_UNITS, **REACTIVE_UNITS}, "_uom")
    channel = _case(CHANNELS, "_letter")
    # nem_lines and nem_300 have a row per line and per 300 record, a few thousand: DuckDB scans a table
    # that small on one thread, Arrow batches of it in parallel (the values are split from them).
    lines = con.sql("""
        with trimmed as (
            select line_no, trim(line, chr(13) || ' ') as line, from nem_source
        ),
        kinds as (
            select line_no, line, trim(split_part(line, ',', 1)) as rt, from trimmed where line <> ''
        ),
        marks as (
            select line_no,
                max(case when rt = '200' then line_no end) over w as h200,
                max(case when rt = '300' then line_no end) over w as h300,
            from kinds
            window w as (order by line_no rows unbounded preceding)
        ),
        typed as (
            select kinds.*,
                -- the fields of the few lines that are not 300 records (those are split where they are read)
                case when rt <> '300' then string_split(line, ',') end as f,
                h200, h300,
            from kinds join marks using (line_no)
        )
        select * from typed
    """)
    _register_batched(con, "nem_lines", lines.to_arrow_table())
    con.execute(f"""
        create or replace temp table nem_h as
        with headers as (
            select line_no as h200, trim(f[2]) as nmi, upper(trim(coalesce(f[5], ''))) as suffix,
                   upper(trim(coalesce(f[8], ''))) as _uom, trim(coalesce(f[8], '')) as uom_text,
                   trim(f[9]) as ilen_text, try_cast(trim(f[9]) as INTEGER) as ilen,
            from nem_lines where rt = '200'
        ),
        lengths as (
            select *, left(suffix, 1) as _letter,
                case when ilen between 1 and 1440 and 1440 % ilen = 0 then 1440 // ilen end as n,
            from headers
        ),
        h as (
            select *, nmi || '-' || substr(suffix, 2) as meter_id, {channel} as channel, {units} as factor,
                list_transform(range(n), lambda x: strftime(TIMESTAMP '2000-01-01' + to_minutes(x * ilen),
                    'T%H:%M:%S')) as times,
            from lengths
        )
        select * from h
    """)
    records = con.sql(f"""
        with
        split as (
            select l.line_no, l.line, string_split(l.line, ',') as f, h.* exclude (times),
            from nem_lines l left join nem_h h on h.h200 = l.h200
            where l.rt = '300'
        ),
        joined as (
            select *, array_to_string(f[3 : 2 + n], ',') as _joined, from split
        ),
        r300 as (
            select * exclude (_joined), try_strptime(trim(f[2]), '%Y%m%d') as day,
                regexp_full_match(_joined, '{PLAIN_VALUES_RE}') as plain,
                upper(trim(f[3 + n])) as qm,
                len(f) >= n + 3
                    and case when regexp_full_match(_joined, '{PLAIN_VALUES_RE}') then true
                        else regexp_full_match(_joined, '{VALUES_RE}') end
                    and not regexp_full_match(trim(f[3 + n]), '{NUMBER_RE}') as ok_values,
            from joined
        ),
        checked as (
            select *,
                case
                    when nmi is null then 'the 300 record has no 200 record before it'
                    when n is null then 'the 200 record on line ' || h200 || ' has the interval length '
                        || coalesce('''' || ilen_text || '''', 'empty')
                        || ', which is not a number of minutes that divides a day'
                    when not ok_values then 'the 300 record holds ' || {_count_values()}
                        || ' interval values where the interval length of ' || ilen || ' minutes (200 record'
                        || ' on line ' || h200 || ') needs ' || n || ': quarantined whole, never read in part'
                    when day is null or year(day) not between 1900 and 2099
                        then 'the 300 record''s interval date '
                        || coalesce('''' || trim(f[2]) || '''', 'empty') || ' is not a date YYYYMMDD'
                    when not regexp_full_match(coalesce(qm, ''), '{QUALITY_RE}')
                        then 'the 300 record''s quality method '
                        || coalesce('''' || qm || '''', 'empty') || ' is not A, E, F, N, S or V'
                end as whole_problem,
            from r300
        )
        select * exclude (f, ok_values), {_line_problem()} as line_problem,
            strftime(day, '%Y-%m-%d') as day_text, ilen::VARCHAR as ilen_out,
        from checked
    """)
    _register_batched(con, "nem_300", records.to_arrow_table())
    # Most files have no V (variable) record: then no value looks for the 400 record that covers it.
    has_v = con.execute(
        "select count(*) from nem_300 where whole_problem is null and qm like 'V%'"
    ).fetchone()
    flag_join = "left join flags f on f.h300 = v.line_no and f.i = v.i" if has_v and has_v[0] else ""
    flag = "f.eq" if flag_join else "null"
    con.execute(f"""
        create or replace temp table nem_values as
        with values_ as (
            select line_no, qm, line_problem, channel, h200,
                unnest(range(1, n + 1)) as i,
                trim(unnest(string_split(line, ',')[3 : 2 + n])) as v,
            from nem_300 where whole_problem is null
        ),
        times as (
            select h200, unnest(range(1, n + 1)) as i, unnest(times) as t, from nem_h
        ),
        events as (
            select l.h300, try_cast(trim(l.f[2]) as INTEGER) as s, try_cast(trim(l.f[3]) as INTEGER) as e,
                   upper(left(trim(coalesce(l.f[4], '')), 1)) as eq, l.line_no as e_line, r.n,
            from nem_lines l join nem_300 r on r.line_no = l.h300
            where l.rt = '400' and l.h300 > l.h200 and left(r.qm, 1) = 'V' and r.whole_problem is null
        ),
        covered as (
            select h300, unnest(range(greatest(s, 1), least(e, n) + 1)) as i, eq, e_line,
            from events where s is not null and e is not null
        ),
        flags as (
            select h300, i, arg_max(eq, e_line) as eq, from covered group by h300, i
        ),
        flagged as (
            select v.line_no, v.i, v.v, times.t, v.line_problem, v.channel,
                case when left(v.qm, 1) = 'V' then {flag} else left(v.qm, 1) end as flag,
            from values_ v join times using (h200, i) {flag_join}
        )
        select line_no, i, v, t, flag, coalesce(line_problem, {_value_problem()}) as problem, from flagged
    """)
    record = (
        "nmi || ',' || suffix || ',' || strftime(day, '%Y%m%d') || ',interval ' || i || ',' || v || ',' || qm"
    )
    con.execute(f"""
        create or replace temp table nem_bad as
        with value_bad as (
            select line_no, nv.problem, {record} as record, i as _ord,
            from nem_values nv join nem_300 r using (line_no)
            where nv.problem is not null
        ),
        whole as (
            select line_no, whole_problem as problem, line as record, 0 as _ord,
            from nem_300 where whole_problem is not null
        ),
        events_bad as (
            select l.line_no, 'the 400 record ' || case
                    when l.h300 is null or l.h300 < l.h200 then 'follows no 300 record'
                    else 'covers intervals ' || coalesce(l.f[2], '?') || '-' || coalesce(l.f[3], '?')
                        || ', outside the ' || coalesce(h.n::VARCHAR, '?') || ' intervals of its day'
                end as problem, l.line as record, 0 as _ord,
            from nem_lines l
            left join (select line_no as h200, 1440 // try_cast(f[9] as INTEGER) as n from nem_lines
                       where rt = '200' and try_cast(f[9] as INTEGER) between 1 and 1440) h on h.h200 = l.h200
            where l.rt = '400' and (
                l.h300 is null or l.h300 < l.h200 or h.n is null
                or try_cast(l.f[2] as INTEGER) is null or try_cast(l.f[3] as INTEGER) is null
                or try_cast(l.f[2] as INTEGER) < 1 or try_cast(l.f[3] as INTEGER) > h.n
                or try_cast(l.f[2] as INTEGER) > try_cast(l.f[3] as INTEGER)
            )
        ),
        unknown as (
            select line_no, 'the line is no NEM12 record (record type '
                || coalesce('''' || left(rt, 20) || '''', 'empty') || ')' as problem,
                line as record, 0 as _ord,
            from nem_lines where rt not in {STRUCTURE}
        ),
        all_bad as (
            select *, 'nem12' as rule from value_bad where problem is not null
            union all select *, 'nem12' from whole
            union all select *, 'nem12' from events_bad
            union all select *, 'nem12' from unknown
        )
        select line_no, case when problem like 'N %' then 'no_reading' else rule end as rule,
               problem as reason, record, _ord
        from all_bad
    """)


def _register_batched(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Register `table` as view `name` in record batches of BATCH_ROWS rows: DuckDB scans them in parallel."""
    con.register(name, pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), table.schema))


def _count_values() -> str:
    """SQL: how many values a 300 record holds: the fields after the date up to the first non-number."""
    return f"""coalesce(list_position(
        list_transform(f[3:], lambda x: regexp_full_match(trim(x), '{NUMBER_RE}')), false) - 1, len(f) - 2)"""


def _line_problem() -> str:
    """SQL: why every interval value of a 300 record is quarantined (channel or unit), or NULL."""
    return """case
        when channel is null then 'unsupported channel: NMI suffix '
            || coalesce('''' || suffix || '''', 'empty')
            || ' is not E, B, Q or K (energy import/export, reactive import/export)'
        when factor is null then 'unsupported unit ' || coalesce('''' || uom_text || '''', 'empty')
            || ' (Wh, kWh, MWh, varh, kvarh or Mvarh)'
        when (channel like 'ACTIVE%') <> (_uom in ('WH', 'KWH', 'MWH')) then 'the unit '''
            || uom_text || ''' does not fit the channel ' || channel
    end"""


def _value_problem() -> str:
    """SQL: why one interval value of nem_values is quarantined, or NULL (after the line's problem)."""
    return """case
        when flag = 'N' then 'N (null): no reading for this interval, never a zero'
        when flag is null then 'a V (variable) interval that no 400 record covers'
        when flag not in ('A', 'E', 'F', 'S') then 'the 400 record''s quality method ''' || flag
            || ''' is not A, E, F, N or S'
        when starts_with(v, '-') and regexp_matches(v, '[1-9]') and channel like '%IMPORT'
            then 'a negative value on the import channel ' || channel
    end"""
