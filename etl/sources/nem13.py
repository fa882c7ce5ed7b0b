"""NEM13 (AEMO accumulation meter reads) -> register_reads (CONTRACT.md §8, docs/sources.md).

A 250 record carries two register reads, the previous and the current one; each is one record. A read is
a row of register_reads (meter_id = NMI-suffix, register TOTAL, read_type REGULAR) when its quality is A
(actual) and the record's direction is E (energy the network delivers to the premises). Otherwise it is
quarantined: register_reads holds meter reads of delivered energy only, and an estimated index (E, S, F)
is no meter read. NEM13 files are small (a few reads per meter and quarter), so plain Python reads them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from etl.sources.core import Conversion, Member, quarantine_table, rows_table
from etl.sources.nem12 import _structure_warnings

UNITS = {"WH": Decimal("0.001"), "KWH": Decimal(1), "MWH": Decimal(1000)}
STRUCTURE = ("100", "250", "550", "900")


def convert(members: list[Member], label: str) -> Conversion:
    rows: list[tuple] = []
    bad: list[tuple[int, str, str, str]] = []
    warnings: list[str] = []
    offset = 0
    for member in members:
        lines = member.text.split("\n")
        warnings += _structure_warnings(lines, member.where(label), offset)
        for i, raw in enumerate(lines, start=offset + 1):
            line = raw.strip("\r ")
            if not line:
                continue
            f = [x.strip() for x in line.split(",")]
            if f[0] not in STRUCTURE:
                bad.append((i, "nem13", f"the line is no NEM13 record (record type {f[0][:20]!r})", line))
            elif f[0] == "250":
                _read_250(i, f, line, rows, bad)
        offset += len(lines)
    return Conversion(
        "NEM13", "register_reads", rows_table("register_reads", rows), quarantine_table(bad), warnings
    )


def _read_250(
    line_no: int, f: list[str], line: str, rows: list[tuple], bad: list[tuple[int, str, str, str]]
) -> None:
    if len(f) < 20:
        bad.append(
            (line_no, "nem13", f"the 250 record has {len(f)} fields, fewer than the 20 it needs", line)
        )
        bad.append((line_no, "nem13", "(its second register read)", line))
        return
    meter_id = f"{f[1]}-{f[4]}"
    unit = UNITS.get(f[19].upper())
    for which, value, at, quality in (("previous", f[8], f[9], f[10]), ("current", f[13], f[14], f[15])):
        record = f"{meter_id},{which},{value},{at},{quality}"
        problem = None
        try:
            index = Decimal(value)
            when = datetime.strptime(at, "%Y%m%d%H%M%S")
        except (InvalidOperation, ValueError):
            index, when = None, None
            problem = f"the {which} read {value!r} at {at!r} is not a number and a time YYYYMMDDhhmmss"
        if problem is None and unit is None:
            problem = f"unsupported unit {f[19]!r} (Wh, kWh or MWh)"
        elif problem is None and f[7].upper() != "E":
            problem = (
                f"direction {f[7]!r}: register_reads holds the energy the network delivers (E) only, "
                "not energy fed into the network (I)"
            )
        elif problem is None and not quality.upper().startswith("A"):
            problem = f"the {which} read's quality is {quality!r}: an estimated index is no meter read"
        if problem is not None or index is None or when is None or unit is None:
            bad.append((line_no, "nem13", problem or "unreadable", record))
            continue
        value_kwh = (index * unit).quantize(Decimal("0.000001"))
        rows.append(
            (meter_id, when.strftime("%Y-%m-%dT%H:%M:%S"), "TOTAL", f"{value_kwh:f}", "REGULAR", line_no)
        )
