"""Green Button (ESPI Atom XML) -> interval_reads (CONTRACT.md §8, docs/sources.md).

Every IntervalReading is one record, located by the line its element starts on. The reading's meter is
its UsagePoint (meter_id = the UsagePoint's link path, e.g. `User/237422/UsagePoint/1402026`), its
channel and scale come from the ReadingType that its MeterReading links to, and interval_start is the
instant timePeriod.start (epoch seconds, written with offset Z). Readings of another reading type (net
flow, demand in W, ...) or of an interval the contract does not know (e.g. daily) are quarantined.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from etl.sources.core import Conversion, Member, SourceError, quarantine_table, rows_table

FLOW = {"1": "IMPORT", "19": "EXPORT"}
UOM = {"72": "ACTIVE", "73": "REACTIVE"}
ESTIMATED_QUALITY = {
    "7",
    "8",
    "9",
    "11",
    "12",
}  # ESPI QualityOfReading: edited, estimated, derived, projected
INTERVAL_MINUTES = (5, 10, 15, 30, 60)


@dataclass
class _Entry:
    links: dict[str, list[str]] = field(default_factory=dict)
    kind: str | None = None  # UsagePoint, MeterReading, ReadingType, IntervalBlock, ...
    fields: dict[str, str] = field(default_factory=dict)  # ReadingType fields
    readings: list[dict[str, str]] = field(default_factory=list)


def _path(href: str) -> str:
    """A link's path without scheme, host and the data custodian's `.../resource/` prefix."""
    path = re.sub(r"^[a-z]+://[^/]+", "", href.strip())
    path = path.split("/resource/", 1)[-1]
    return path.strip("/")


def _parse(member: Member, label: str, offset: int) -> list[_Entry]:
    """The Atom entries of one XML text, with the line of each IntervalReading."""
    if "<!DOCTYPE" in member.text or "<!ENTITY" in member.text:
        raise SourceError(
            f"{member.where(label)}: a Green Button file must not declare a DOCTYPE or entities"
        )
    entries: list[_Entry] = []
    stack: list[str] = []
    text: list[str] = []
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")

    def local(name: str) -> str:
        return name.rsplit("}", 1)[-1]

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = local(name)
        stack.append(tag)
        text.clear()
        if tag == "entry":
            entries.append(_Entry())
        elif not entries:
            return
        elif tag == "link" and len(stack) >= 2 and stack[-2] == "entry":
            entries[-1].links.setdefault(attrs.get("rel", ""), []).append(_path(attrs.get("href", "")))
        elif len(stack) >= 2 and stack[-2] == "content" and entries[-1].kind is None:
            entries[-1].kind = tag
        elif tag == "IntervalReading":
            entries[-1].readings.append({"line": str(parser.CurrentLineNumber + offset)})

    def end(name: str) -> None:
        tag = local(name)
        value = "".join(text).strip()
        stack.pop()
        text.clear()
        if not entries:
            return
        entry = entries[-1]
        if entry.kind == "ReadingType" and stack and stack[-1] == "ReadingType":
            entry.fields[tag] = value
        elif entry.readings and "IntervalReading" in stack:
            parent = stack[-1]
            key = tag if parent == "IntervalReading" else f"{parent}.{tag}"
            entry.readings[-1][key] = value

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(member.text, True)
    except xml.parsers.expat.ExpatError as exc:
        raise SourceError(f"{member.where(label)} is not well-formed XML ({exc})") from None
    return entries


def convert(members: list[Member], label: str) -> Conversion:
    rows: list[tuple] = []
    bad: list[tuple[int, str, str, str]] = []
    offset = 0
    for member in members:
        entries = _parse(member, label, offset)
        offset += member.text.count("\n") + 1
        reading_types = {
            e.links["self"][0]: e.fields for e in entries if e.kind == "ReadingType" and "self" in e.links
        }
        meter_readings = {
            e.links["self"][0]: e for e in entries if e.kind == "MeterReading" and "self" in e.links
        }
        for entry in entries:
            if entry.kind != "IntervalBlock":
                continue
            block = (entry.links.get("self") or entry.links.get("up") or [""])[0]
            reading_path = block.split("/IntervalBlock", 1)[0]
            meter_reading = meter_readings.get(reading_path)
            rtype = None
            if meter_reading is not None:
                linked = [
                    reading_types[h] for h in meter_reading.links.get("related", []) if h in reading_types
                ]
                rtype = linked[0] if linked else None
            meter_id = reading_path.split("/MeterReading", 1)[0]
            for reading in entry.readings:
                _reading(meter_id, rtype, reading, rows, bad)
    return Conversion(
        "Green Button", "interval_reads", rows_table("interval_reads", rows), quarantine_table(bad)
    )


def _reading(
    meter_id: str,
    rtype: dict[str, str] | None,
    reading: dict[str, str],
    rows: list[tuple],
    bad: list[tuple[int, str, str, str]],
) -> None:
    line = int(reading["line"])
    start, duration, value = (
        reading.get("timePeriod.start"),
        reading.get("timePeriod.duration"),
        reading.get("value"),
    )
    record = f"{meter_id},start={start},duration={duration},value={value}"
    problem = None
    if rtype is None:
        problem = "the reading's MeterReading links to no ReadingType in the file"
    elif rtype.get("flowDirection") not in FLOW or rtype.get("uom") not in UOM:
        problem = (
            f"unsupported reading type (flowDirection {rtype.get('flowDirection')}, uom {rtype.get('uom')}): "
            "only energy (uom 72 Wh, 73 varh) delivered (flowDirection 1) or received (19) is read"
        )
    elif not (start or "").lstrip("-").isdigit() or not (duration or "").isdigit():
        problem = "timePeriod start and duration must be whole seconds"
    elif int(duration or 0) % 60 or int(duration or 0) // 60 not in INTERVAL_MINUTES:
        problem = f"an interval of {duration} s: interval_reads takes 5, 10, 15, 30 or 60 minutes"
    elif not re.fullmatch(r"[+-]?[0-9]+", value or ""):
        problem = f"the value {value!r} is not a whole number"
    elif not re.fullmatch(r"[+-]?[0-9]{1,2}", rtype.get("powerOfTenMultiplier") or "0"):
        power_text = rtype.get("powerOfTenMultiplier")
        problem = f"the ReadingType's powerOfTenMultiplier {power_text!r} is not a small whole number"
    if problem is not None or rtype is None:
        bad.append((line, "greenbutton", problem or "", record))
        return
    flow, kind = FLOW[rtype["flowDirection"]], UOM[rtype["uom"]]
    power = int(rtype.get("powerOfTenMultiplier") or 0)
    amount = Decimal(value or 0).scaleb(power) / 1000  # Wh or varh -> kWh or kvarh
    if amount < 0 and flow == "IMPORT":
        bad.append((line, "greenbutton", "a negative value on an import reading type", record))
        return
    at = datetime.fromtimestamp(int(start or 0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    quality = "E" if reading.get("ReadingQuality.quality") in ESTIMATED_QUALITY else "A"
    kwh = f"{abs(amount).quantize(Decimal('0.000001')):f}"
    rows.append((meter_id, f"{kind}_{flow}", at, str(int(duration or 0) // 60), kwh, quality, line))
