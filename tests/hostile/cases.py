"""The hostile landing corpus: malformed, hostile and strange entries, each with what must happen to it.

`CASES` is the table (one `Case` per landing entry, its `note` the one-line description); `write_corpus`
puts every entry into a data home's `landing/`, next to a generated company whose own files stay valid.
tests/test_hostile.py runs it all through `meterflow run` in one data home. The run uses
METERFLOW_MAX_FILE_MB = MAX_FILE_MB, so that a file a little over a megabyte stands for one over the limit.

Rows that must be accepted carry meter ids no meters snapshot lists (VEE takes interval meters as UNASSIGNED
and rejects register reads as UNKNOWN_METER)
or, in one bill export, a customer no customers snapshot lists (it counts in region UNKNOWN): the
generated company's own figures must come out unchanged.
"""

from __future__ import annotations

import codecs
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_MB = 1
INTERVAL = "meter_id,interval_start,interval_minutes,kwh,quality\n"
REGISTER = "meter_id,read_at,register,index_value,read_type\n"
PAYMENT = "payment_id,bill_id,customer_id,paid_at,amount_vnd,channel\n"
BILL = (
    "export_id,export_version,billing_period,bill_id,line_no,customer_id,bill_type,period_start,"
    "period_end,tariff_code,component,kwh,unit_price_vnd,amount_vnd,vat_vnd,issued_on\n"
)
NETWORK = "node_id,node_type,parent_id,region_code,name\n"
# An accepted interval row of a meter no snapshot lists: ingested, then rejected by VEE.
GOOD = "HX-{n},2025-01-15T10:{m:02d}:00,30,1.5,A"
# Rows of a file outside the data home, reached only through links: must never show up in the lake.
OUTSIDE_MARKER = "OUTSIDE-MARKER"
# The one accepted bill line of a customer no snapshot lists: 7 kWh and 14,000 VND in 2025-01.
UNKNOWN_CUSTOMER = "PC03ZZ9999999"
UNKNOWN_CUSTOMER_KWH = 7
UNKNOWN_CUSTOMER_VND = 14000


def good(n: int, minute: int = 0) -> str:
    return GOOD.format(n=n, m=minute)


def bill_line(line_no: int, **overrides: str) -> str:
    """A bill line of export CIS-HX-1 for the unknown customer; `overrides` replace single fields."""
    fields = {
        "export_id": "CIS-HX-1",
        "export_version": "1",
        "billing_period": "2025-01",
        "bill_id": "HX-BILL-1",
        "line_no": str(line_no),
        "customer_id": UNKNOWN_CUSTOMER,
        "bill_type": "REGULAR",
        "period_start": "2024-12-10",
        "period_end": "2025-01-10",
        "tariff_code": "SH",
        "component": "BLOCK_1",
        "kwh": str(UNKNOWN_CUSTOMER_KWH),
        "unit_price_vnd": "2000",
        "amount_vnd": str(UNKNOWN_CUSTOMER_VND),
        "vat_vnd": "1120",
        "issued_on": "2025-01-11",
    } | overrides
    return ",".join(fields.values())


@dataclass(frozen=True)
class Case:
    """One landing entry of the corpus and what meterflow must make of it.

    kind: file (bytes `content`), link_file / link_dir (a symbolic link to a file / folder outside the
    data home), dangling (a link to nothing), folder (a sub-folder holding a valid file), fifo, copy (the
    bytes of the generated file `copy_of`). `name` is the path under landing/; `raw_name` the file name
    as bytes when it is not UTF-8. rows = (rows in, accepted, quarantined); rules = the quarantine rule of
    each quarantined row in line order; reason = a fragment of the message the run gives.
    """

    name: str
    note: str
    status: str
    reason: str = ""
    rows: tuple[int, int, int] = (0, 0, 0)
    rules: tuple[str, ...] = ()
    content: bytes = b""
    kind: str = "file"
    copy_of: str = ""
    raw_name: bytes | None = None

    @property
    def folder(self) -> str:
        return self.name.split("/", 1)[0]


def _text(*lines: str, header: str = INTERVAL, newline: str = "\n") -> bytes:
    return (header + "".join(line + "\n" for line in lines)).replace("\n", newline).encode()


def _gzip_members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(p, mtime=0) for p in parts)


def _big_payments() -> bytes:
    """A valid payments file a little over MAX_FILE_MB."""
    line = "PMX{n:010d},B{n},{c},2025-01-20T10:00:00,100000,BANK_TRANSFER\n"
    body, n = [PAYMENT], 0
    size = len(PAYMENT)
    while size <= MAX_FILE_MB * 1024 * 1024 + 1000:
        row = line.format(n=n, c=UNKNOWN_CUSTOMER)
        body.append(row)
        size += len(row)
        n += 1
    return "".join(body).encode()


CASES: tuple[Case, ...] = (
    # --- bytes and encodings ------------------------------------------------------------------------
    Case(
        "payments/payments_20250121_cp1258.csv",
        "Windows-1258 text (Vietnamese in an extra column): rejected whole, naming line 2 and the byte",
        "REJECTED",
        "is not valid UTF-8: line 2 has the byte 0xd0",
        content=(PAYMENT.rstrip("\n") + ",note\n").encode()
        + "PMX1,B1,PC03ZZ9999999,2025-01-20T10:00:00,1000,CARD,Đông Hà\n".encode("cp1258"),
    ),
    Case(
        "readings/interval_reads_hx_utf16.csv",
        "UTF-16 with its BOM: not UTF-8, rejected whole at line 1",
        "REJECTED",
        "is not valid UTF-8: line 1 has the byte 0xff",
        content=codecs.BOM_UTF16_LE + _text(good(1)).decode().encode("utf-16-le"),
    ),
    Case(
        "readings/interval_reads_hx_bom_crlf.csv",
        "UTF-8 BOM and CRLF line ends: both allowed, three rows accepted",
        "INGESTED",
        rows=(3, 3, 0),
        content=codecs.BOM_UTF8 + _text(good(2, 0), good(2, 30), good(3), newline="\r\n"),
    ),
    Case(
        "readings/interval_reads_hx_bom_only.csv",
        "nothing but a UTF-8 BOM: an empty file, rejected",
        "REJECTED",
        "is empty",
        content=codecs.BOM_UTF8,
    ),
    Case(
        "readings/register_reads_hx_quoted_newline.csv",
        "a quoted extra field holding CRLF and LF line breaks: two rows accepted, numbered by physical line",
        "INGESTED",
        rows=(2, 2, 0),
        content=(
            REGISTER.rstrip("\n") + ",note\n"
            'HX-R1,2025-01-10T00:00:00,TOTAL,100,REGULAR,"first\r\nsecond\nthird"\n'
            "HX-R1,2025-01-20T00:00:00,TOTAL,150,REGULAR,plain\n"
        ).encode(),
    ),
    Case(
        "readings/interval_reads_hx_unclosed_quote.csv",
        "a quote opened on line 3 that never closes: the file cannot be parsed, rejected whole",
        "REJECTED",
        "the quote opened on line 3 never closes",
        content=_text(good(4), 'HX-5,"2025-01-15T10:00:00,30,1.5,A', good(6)),
    ),
    Case(
        "readings/interval_reads_hx_semicolons.csv",
        "semicolon separated: the header is one column, rejected asking whether the file is comma separated",
        "REJECTED",
        "is the file comma separated?",
        content=_text("HX-7;2025-01-15T10:00:00;30;1.5;A", header=INTERVAL.replace(",", ";")),
    ),
    Case(
        "readings/interval_reads_hx_nul_byte.csv",
        "a NUL byte inside a meter id and inside a kWh: text is kept as delivered, the kWh is quarantined",
        "INGESTED",
        rows=(2, 1, 1),
        rules=("type",),
        content=_text("HX-\x008,2025-01-15T10:00:00,30,1.5,A", "HX-9,2025-01-15T10:00:00,30,1\x00.5,A"),
    ),
    Case(
        "readings/interval_reads_hx_control_bytes.csv",
        "binary junk holding every byte 0x1c-0x1f: not a text CSV file, rejected whole",
        "REJECTED",
        "not a text CSV file",
        content=_text("HX-10,\x1c\x1d\x1e\x1f,30,1,A"),
    ),
    # --- gzip ---------------------------------------------------------------------------------------
    Case(
        "readings/interval_reads_hx_truncated.csv.gz",
        "a gzip file cut in the middle: rejected as truncated, none of its rows kept",
        "REJECTED",
        "is truncated",
        content=gzip.compress(_text(*(good(100 + i) for i in range(200))), mtime=0)[:300],
    ),
    Case(
        "readings/interval_reads_hx_not_gzip.csv.gz",
        "named .csv.gz but plain text: rejected",
        "REJECTED",
        "is named .csv.gz but is not gzip-compressed",
        content=_text(good(11)),
    ),
    Case(
        "readings/interval_reads_hx_gzip_inside.csv",
        "named .csv but gzip-compressed: rejected",
        "REJECTED",
        "is gzip-compressed but named .csv",
        content=gzip.compress(_text(good(12)), mtime=0),
    ),
    Case(
        "readings/interval_reads_hx_trailing_junk.csv.gz",
        "a complete gzip member followed by junk bytes: not a valid gzip file, rejected",
        "REJECTED",
        "is not a valid gzip file",
        content=gzip.compress(_text(good(13)), mtime=0) + b"this is not gzip",
    ),
    Case(
        "readings/interval_reads_hx_two_members.csv.gz",
        "two concatenated gzip members (valid gzip): read as one text, two rows accepted",
        "INGESTED",
        rows=(2, 2, 0),
        content=_gzip_members(_text(good(14)), (good(15) + "\n").encode()),
    ),
    Case(
        "readings/interval_reads_hx_bomb.csv.gz",
        "a few kB of gzip inflating to 1.5 MB, above METERFLOW_MAX_FILE_MB: rejected without keeping it all",
        "REJECTED",
        "bytes of CSV, the limit (METERFLOW_MAX_FILE_MB)",
        content=gzip.compress(_text(*[good(16)] * 40000), mtime=0),
    ),
    # --- empty files and headers ----------------------------------------------------------------------
    Case(
        "payments/payments_20250122_zero_bytes.csv",
        "a zero-byte file: rejected as empty",
        "REJECTED",
        "is empty: no header and no accepted row",
    ),
    Case(
        "payments/payments_20250123_header_only.csv",
        "a header and no row: rejected as having no accepted row, replaces nothing",
        "REJECTED",
        "no accepted row: the file has a header but no data row",
        content=PAYMENT.encode(),
    ),
    Case(
        "payments/payments_20250124_blank_lines.csv",
        "only blank lines: rejected as empty",
        "REJECTED",
        "is empty",
        content=b"\n\r\n\n",
    ),
    Case(
        "payments/payments_20250125_repeated_column.csv",
        "the column amount_vnd twice in the header: rejected whole",
        "REJECTED",
        "the column name 'amount_vnd' repeats in the header on line 1 (columns 5 and 7)",
        content=(PAYMENT.rstrip("\n") + ",amount_vnd\nPMX2,B2,C2,2025-01-20T10:00:00,1,CARD,2\n").encode(),
    ),
    Case(
        "payments/payments_20250126_missing_column.csv",
        "no amount_vnd column: rejected whole naming the column",
        "REJECTED",
        "lacks the required column(s) amount_vnd",
        content=b"payment_id,bill_id,customer_id,paid_at,channel\nPMX3,B3,C3,2025-01-20T10:00:00,CARD\n",
    ),
    Case(
        "readings/interval_reads_hx_hostile_columns.csv",
        "extra columns named like SQL and JSON injections: kept in _extra as plain names, rows accepted",
        "INGESTED",
        rows=(1, 1, 0),
        content=(
            INTERVAL.rstrip("\n") + ',"x\'); drop table raw; --","a""}{b"\n' + good(17) + ",1,2\n"
        ).encode(),
    ),
    Case(
        "readings/interval_reads_hx_field_counts.csv",
        "rows with too few and too many fields: each quarantined with its line, the good row accepted",
        "INGESTED",
        rows=(3, 1, 2),
        rules=("field_count", "field_count"),
        content=_text("HX-18,2025-01-15T10:00:00,30", good(19), good(20) + ",extra"),
    ),
    # --- values ---------------------------------------------------------------------------------------
    Case(
        "readings/interval_reads_hx_numbers.csv",
        "NaN, infinities, exponent, thousands separator, 13 integer digits, 7 decimals, a space, an empty "
        "kWh: each row quarantined, the good one accepted",
        "INGESTED",
        rows=(10, 1, 9),
        rules=("type", "type", "type", "type", "type", "type", "type", "type", "required"),
        content=_text(
            "HX-21,2025-01-15T10:00:00,30,NaN,A",
            "HX-21,2025-01-15T10:30:00,30,inf,A",
            "HX-21,2025-01-15T11:00:00,30,-Infinity,A",
            "HX-21,2025-01-15T11:30:00,30,1e3,A",
            'HX-21,2025-01-15T12:00:00,30,"1,000.5",A',
            "HX-21,2025-01-15T12:30:00,30,1234567890123,A",
            "HX-21,2025-01-15T13:00:00,30,1.1234567,A",
            "HX-21,2025-01-15T13:30:00,30, 1.5,A",
            "HX-21,2025-01-15T14:00:00,30,,A",
            "HX-21,2025-01-15T14:30:00,30,999999999999.999999,A",
        ),
    ),
    Case(
        "readings/interval_reads_hx_timestamps.csv",
        "impossible dates, a bare date, before 1900, after 2099, and an offset that moves the instant past "
        "2099: each quarantined; 1900, the last minute of 2099 and ISO 8601's 24:00 (end of day) accepted",
        "INGESTED",
        rows=(9, 3, 6),
        rules=("type", "type", "type", "range", "range", "range"),
        content=_text(
            "HX-22,2025-02-30T00:00:00,30,1,A",
            "HX-22,2025-13-01T00:00:00,30,1,A",
            "HX-22,2025-01-15,30,1,A",
            "HX-22,2025-01-15T24:00:00,30,1,A",
            "HX-22,1899-12-31T23:30:00,30,1,A",
            "HX-22,2100-01-01T00:00:00,30,1,A",
            "HX-22,2099-12-31T23:30:00-01:00,30,1,A",
            "HX-22,1900-01-01T00:00:00,30,1,A",
            "HX-22,2099-12-31T16:59:00Z,30,1,A",
        ),
    ),
    Case(
        "readings/interval_reads_hx_enums.csv",
        "quality 'a', 'X' and ' A', interval_minutes 45 and -30: quarantined (enums are case-sensitive)",
        "INGESTED",
        rows=(6, 1, 5),
        rules=("enum", "enum", "enum", "range", "range"),
        content=_text(
            "HX-23,2025-01-15T10:00:00,30,1,a",
            "HX-23,2025-01-15T10:30:00,30,1,X",
            "HX-23,2025-01-15T11:00:00,30,1, A",
            "HX-23,2025-01-15T11:30:00,45,1,A",
            "HX-23,2025-01-15T12:00:00,-30,1,A",
            "HX-23,2025-01-15T12:30:00,30,1,",
        ),
    ),
    Case(
        "readings/interval_reads_hx_negative.csv",
        "negative kWh and a kWh of 0: the negative one is quarantined, zero is a reading",
        "INGESTED",
        rows=(2, 1, 1),
        rules=("negative_kwh",),
        content=_text("HX-24,2025-01-15T10:00:00,30,-0.5,A", "HX-24,2025-01-15T10:30:00,30,0,A"),
    ),
    Case(
        "billing/bill_lines_20250131_hx_unknown_customer.csv",
        "an export for a customer no snapshot lists (accepted, counts in region UNKNOWN) with an impossible "
        "date, a month 13, a period ending before it starts, negative kWh on a regular line and version 0",
        "INGESTED",
        rows=(6, 1, 5),
        rules=("type", "type", "period_order", "negative_kwh", "range"),
        content=_text(
            bill_line(1),
            bill_line(2, period_start="2025-02-29"),
            bill_line(3, billing_period="2025-13"),
            bill_line(4, period_end="2024-12-01"),
            bill_line(5, kwh="-3"),
            bill_line(6, export_version="0"),
            header=BILL,
        ),
    ),
    Case(
        "readings/register_reads_hx_unknown_meter.csv",
        "register reads of a meter no snapshot lists, with SQL and a path as text: accepted, then rejected "
        "by VEE as UNKNOWN_METER",
        "INGESTED",
        rows=(2, 2, 0),
        content=_text(
            "'); drop table raw_register_reads; --,2025-01-10T00:00:00,TOTAL,5,REGULAR",
            "../../../etc/passwd,2025-01-10T00:00:00,TOTAL,5,REGULAR",
            header=REGISTER,
        ),
    ),
    Case(
        "reference/network_20250130_broken.csv",
        "a network snapshot whose every row breaks a rule: rejected, quarantine kept, and it replaces "
        "nothing (the current network stays)",
        "REJECTED",
        "no accepted row: all 2 rows are quarantined (the first, line 2: column node_type has 'SUBSTATION'",
        rows=(2, 0, 2),
        rules=("enum", "network_parent"),
        content=_text("HX-N1,SUBSTATION,,DH,x", "HX-N2,FEEDER,,DH,y", header=NETWORK),
    ),
    Case(
        "reference/customers_latest.csv",
        "a reference file whose name has no snapshot date: rejected",
        "REJECTED",
        "a reference file name must be customers_<YYYYMMDD>...csv[.gz] with a valid snapshot date",
        content=b"customer_id\n",
    ),
    Case(
        "payments/payments_20250127_too_big.csv",
        f"a valid file a little over METERFLOW_MAX_FILE_MB={MAX_FILE_MB}: rejected by its size",
        "REJECTED",
        "bytes (METERFLOW_MAX_FILE_MB)",
        content=_big_payments(),
    ),
    # --- entries that are not regular files ----------------------------------------------------------
    Case(
        "readings/interval_reads_hx_link_outside.csv",
        "a symbolic link to a valid CSV outside the data home: skipped, never followed",
        "SKIPPED",
        "is a symbolic link: links are never followed",
        kind="link_file",
    ),
    Case(
        "readings/interval_reads_hx_link_dir",
        "a symbolic link to a folder outside the data home: skipped, nothing under it read",
        "SKIPPED",
        "is a symbolic link: links are never followed",
        kind="link_dir",
    ),
    Case(
        "readings/interval_reads_hx_dangling.csv",
        "a symbolic link to nothing: skipped",
        "SKIPPED",
        "is a symbolic link: links are never followed",
        kind="dangling",
    ),
    Case(
        "readings/interval_reads_hx_subfolder",
        "a sub-folder holding a valid CSV: skipped, the file inside is not read",
        "SKIPPED",
        "is a folder: only files directly inside landing/readings/ are read",
        kind="folder",
    ),
    Case(
        "readings/interval_reads_hx_fifo.csv",
        "a named pipe: skipped without being opened (opening it would block)",
        "SKIPPED",
        "is not a regular file (a fifo, socket or device)",
        kind="fifo",
    ),
    # --- file names -----------------------------------------------------------------------------------
    Case(
        "readings/interval_reads_hx with spaces.csv",
        "spaces in the name: ingested; the lake names files by sequence and hash only",
        "INGESTED",
        rows=(1, 1, 0),
        content=_text(good(25)),
    ),
    Case(
        "readings/interval_reads_hx_Điện_lực_Quảng_Trị.csv",
        "Vietnamese letters in the name: ingested, the name kept as delivered",
        "INGESTED",
        rows=(1, 1, 0),
        content=_text(good(26)),
    ),
    Case(
        "readings/interval_reads_hx_$(touch PWNED);`touch PWNED2`|cat>x&'\"*?[a].csv",
        "shell and glob metacharacters and quotes in the name: ingested, no command runs, nothing created",
        "INGESTED",
        rows=(1, 1, 0),
        content=_text(good(27)),
    ),
    Case(
        "readings/interval_reads_hx_..\\..\\..\\escape.csv",
        "dots and backslashes that look like a path out of the folder: just a name, ingested in place",
        "INGESTED",
        rows=(1, 1, 0),
        content=_text(good(28)),
    ),
    Case(
        "readings/interval_reads_hx_line\nbreak.csv",
        "a line break inside the file name: ingested; the name is data, never a path or SQL",
        "INGESTED",
        rows=(1, 1, 0),
        content=_text(good(29)),
    ),
    Case(
        "readings/interval_reads_--help.csv",
        "a name that looks like a command-line option: ingested",
        "INGESTED",
        rows=(1, 1, 0),
        content=_text(good(30)),
    ),
    Case(
        "readings/interval_reads_hx_latin1_\\xe9.csv",
        "a file name that is not UTF-8 (byte 0xe9): skipped, named with the byte escaped",
        "SKIPPED",
        "the file name is not valid UTF-8",
        content=_text(good(31)),
        raw_name=b"interval_reads_hx_latin1_\xe9.csv",
    ),
    Case(
        "readings/INTERVAL_READS_hx_upper.csv",
        "the dataset prefix in capitals: matches no dataset, skipped",
        "SKIPPED",
        "matches no dataset of readings",
        content=_text(good(32)),
    ),
    Case(
        "readings/interval_reads_hx_upper_suffix.CSV",
        "suffix .CSV in capitals: not a landing file name, skipped",
        "SKIPPED",
        "a landing file name must end .csv or .csv.gz",
        content=_text(good(33)),
    ),
    Case(
        "readings/payments_20250128_wrong_folder.csv",
        "a payments file dropped into readings/: matches no dataset of that folder, skipped",
        "SKIPPED",
        "matches no dataset of readings (expected interval_reads_*, register_reads_*)",
        content=PAYMENT.encode(),
    ),
    Case(
        "payments/payments_20250101_resent (copy).csv",
        "the same bytes as a generated payments file under another name: a duplicate, nothing changes",
        "DUPLICATE",
        "has the same bytes as payments/payments_20250101.csv",
        kind="copy",
        copy_of="payments/payments_20250101.csv",
    ),
)


def outside_file(outside: Path) -> Path:
    """The valid CSV outside the data home that the links point at."""
    return outside / f"interval_reads_{OUTSIDE_MARKER}.csv"


def write_corpus(landing: Path, outside: Path) -> None:
    """Put every case under `landing` (beside what is there); links point into `outside`."""
    outside.mkdir(parents=True, exist_ok=True)
    target = outside_file(outside)
    target.write_bytes(_text(f"{OUTSIDE_MARKER},2025-01-15T10:00:00,30,1.5,A"))
    for case in CASES:
        path = landing / case.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if case.raw_name is not None:
            folder = os.fsencode(path.parent)
            with open(os.path.join(folder, case.raw_name), "wb") as fh:
                fh.write(case.content)
        elif case.kind == "file":
            path.write_bytes(case.content)
        elif case.kind == "copy":
            path.write_bytes((landing / case.copy_of).read_bytes())
        elif case.kind == "link_file":
            path.symlink_to(target)
        elif case.kind == "link_dir":
            path.symlink_to(outside, target_is_directory=True)
        elif case.kind == "dangling":
            path.symlink_to(outside / "no_such_file.csv")
        elif case.kind == "folder":
            path.mkdir()
            (path / "interval_reads_20250115.csv").write_bytes(target.read_bytes())
        elif case.kind == "fifo":
            os.mkfifo(path)
        else:
            raise ValueError(f"unknown kind {case.kind!r} of case {case.name!r}")
