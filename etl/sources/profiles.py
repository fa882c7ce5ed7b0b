"""Source profiles: `profiles/<name>.toml` in the data home tells how to read a vendor's own CSV export
(CONTRACT.md §8). The keys are documented in docs/sources.md, with worked profiles in docs/profiles/.

Layouts: `long` (one value per row), `wide` (one row per day, one column per interval) and `registers`
(one row per meter and read date, one column per register; register_reads). A record is one value: a
row of a long file, one interval column of a wide row, one register column of a registers row; a row
that cannot be split into its fields is one record, quarantined whole.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from etl.settings import Settings
from etl.sources.core import Conversion, SourceError, quarantine_table, rows_table

CHANNELS = ("ACTIVE_IMPORT", "ACTIVE_EXPORT", "REACTIVE_IMPORT", "REACTIVE_EXPORT")
REGISTERS = ("TOTAL", "NORMAL", "PEAK", "OFFPEAK", "unsupported")
ROLES = {
    "long": ("meter_id", "date", "time", "value", "quality", "channel", "unit"),
    "wide": ("meter_id", "date"),
    "registers": ("meter_id", "date"),
}
REQUIRED_ROLES = {"long": ("date", "value"), "wide": ("date",), "registers": ("meter_id", "date")}
KEYS: dict[str, type | tuple[type, ...]] = {
    "files": list,
    "dataset": str,
    "encoding": str,
    "delimiter": str,
    "decimal": str,
    "layout": str,
    "interval_minutes": int,
    "timestamp_marks": str,
    "date_format": (str, list),
    "time_format": str,
    "repeated_hour": str,
    "meter_id": str,
    "meter_id_pattern": str,
    "meter_pattern": str,
    "channel": str,
    "unit_factor": (int, float),
    "trailing_delimiter": bool,
    "read_time": str,
    "first_value_column": int,
    "value_columns": int,
    "columns": dict,
    "quality": dict,
    "channels": dict,
    "units": dict,
    "registers": dict,
}


class ProfileError(ValueError):
    """An invalid profile: the message names the profile file, the line and the key."""


@dataclass(frozen=True)
class ProfileProblem:
    """A profile that could not be loaded, and the file names it would have taken (when known)."""

    path: str
    message: str
    files: tuple[str, ...]

    def claims(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.files)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Profile:
    name: str
    digest: str  # sha256 of the profile file: part of the hash of every file it reads
    files: tuple[str, ...]
    dataset: str
    layout: str
    settings: dict[str, Any] = field(hash=False)

    def matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.files)

    def convert(self, data: bytes, label: str) -> Conversion:
        return _Reader(self, label).convert(data)


def load_profiles(settings: Settings) -> tuple[list[Profile], list[ProfileProblem]]:
    """The valid profiles of `<home>/profiles/*.toml` in name order, and the problems of the others."""
    folder = settings.home / "profiles"
    profiles, problems = [], []
    if not folder.is_dir() or folder.is_symlink():
        return [], []
    for path in sorted(folder.glob("*.toml")):
        if path.is_symlink() or not path.is_file():
            why = "is a symbolic link or not a regular file: not read (nothing outside the data home is read)"
            problems.append(ProfileProblem(path.name, f"profiles/{path.name} {why}", ()))
            continue
        try:
            profiles.append(read_profile(path))
        except ProfileError as exc:
            problems.append(ProfileProblem(path.name, str(exc), _patterns_of(path)))
    return profiles, problems


def _patterns_of(path: Path) -> tuple[str, ...]:
    """The `files` patterns of a profile that is otherwise invalid, when they can be read."""
    try:
        files = tomllib.loads(path.read_text(encoding="utf-8")).get("files")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ()
    return tuple(p for p in files if isinstance(p, str)) if isinstance(files, list) else ()


def _line_of(text: str, key: str) -> int:
    """The line of `key = ...` in a TOML text (1 when it is not written there)."""
    match = re.search(rf'^\s*"?{re.escape(key)}"?\s*=', text, re.MULTILINE)
    return text[: match.start()].count("\n") + 1 if match else 1


def read_profile(path: Path) -> Profile:
    """Read and check one profile. Raises ProfileError naming the file, line and key."""
    name = f"profiles/{path.name}"
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{name}: cannot be read as UTF-8 text ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{name}: not valid TOML: {exc}") from None

    def fail(key: str, why: str) -> ProfileError:
        return ProfileError(f"{name}, line {_line_of(text, key.rsplit('.', 1)[-1])}, key {key}: {why}")

    for key, value in doc.items():
        if key not in KEYS:
            raise fail(key, f"unknown key (known: {', '.join(sorted(KEYS))})")
        if not isinstance(value, KEYS[key]) or isinstance(value, bool) and KEYS[key] is not bool:
            raise fail(key, f"must be of type {getattr(KEYS[key], '__name__', 'number')}")
    files = doc.get("files")
    if not files or not all(isinstance(p, str) and p for p in files):
        raise fail("files", 'a list of file name patterns (e.g. ["Verbruik_*.csv"]) is required')
    dataset = doc.get("dataset", "interval_reads")
    layout = doc.get("layout", "long")
    if layout not in ROLES:
        raise fail("layout", f"{layout!r} is not one of long, wide, registers")
    if dataset != ("register_reads" if layout == "registers" else "interval_reads"):
        raise fail("dataset", f"{dataset!r} does not go with layout {layout!r}")
    if len(doc.get("delimiter", ",")) != 1:
        raise fail("delimiter", "must be one character")
    if doc.get("decimal", ".") not in (".", ","):
        raise fail("decimal", "must be '.' or ','")
    if layout != "registers" and doc.get("interval_minutes") not in (5, 10, 15, 30, 60):
        raise fail("interval_minutes", "required: 5, 10, 15, 30 or 60")
    formats = doc.get("date_format", "%Y-%m-%d")
    if not all(isinstance(x, str) and "%" in x for x in ([formats] if isinstance(formats, str) else formats)):
        raise fail("date_format", "a strptime format (e.g. '%d/%m/%Y') or a list of them")
    if doc.get("timestamp_marks", "start") not in ("start", "end"):
        raise fail("timestamp_marks", "must be 'start' or 'end'")
    if doc.get("repeated_hour", "in_order") != "in_order":
        raise fail("repeated_hour", "must be 'in_order' (the first time is the earlier instant)")
    try:
        "".encode(doc.get("encoding", "utf-8"))
    except LookupError:
        raise fail("encoding", f"unknown encoding {doc.get('encoding')!r}") from None
    columns = doc.get("columns", {})
    for role, headers in columns.items():
        if role not in ROLES[layout]:
            raise fail(
                f"columns.{role}", f"not a column role of layout {layout} ({', '.join(ROLES[layout])})"
            )
        if not (
            isinstance(headers, str) or isinstance(headers, list) and all(isinstance(h, str) for h in headers)
        ):
            raise fail(f"columns.{role}", "a header name or a list of header names")
    for role in REQUIRED_ROLES[layout]:
        if role not in columns and not (role == "meter_id" and "meter_id" in doc):
            raise fail(f"columns.{role}" if role != "meter_id" else "meter_id", "required")
    if "meter_id" not in columns and "meter_id" not in doc:
        raise fail("meter_id", "give a column (columns.meter_id) or one meter id for the file (meter_id)")
    for key in ("meter_id_pattern", "meter_pattern"):
        if key in doc:
            try:
                pattern = re.compile(doc[key])
            except re.error as exc:
                raise fail(key, f"not a regular expression ({exc})") from None
            if key == "meter_id_pattern" and pattern.groups != 1:
                raise fail(key, "needs exactly one group: the meter id")
    for code, flag in doc.get("quality", {}).items():
        if flag not in ("A", "E", "missing"):
            raise fail(f"quality.{code}", f"{flag!r} is not A, E or missing")
    for code, channel in doc.get("channels", {}).items():
        if channel not in CHANNELS:
            raise fail(f"channels.{code}", f"{channel!r} is not one of {', '.join(CHANNELS)}")
    if doc.get("channel", "ACTIVE_IMPORT") not in CHANNELS:
        raise fail("channel", f"{doc['channel']!r} is not one of {', '.join(CHANNELS)}")
    for unit, factor in doc.get("units", {}).items():
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise fail(f"units.{unit}", "the factor to kWh (or kvarh) must be a number > 0")
    registers = doc.get("registers", {})
    if layout == "registers" and not registers:
        raise fail("registers", "layout registers needs [registers]: header -> register")
    for header, register in registers.items():
        if register not in REGISTERS:
            raise fail(f"registers.{header}", f"{register!r} is not one of {', '.join(REGISTERS)}")
    if layout == "wide" and doc.get("first_value_column", 0) < 1:
        raise fail("first_value_column", "layout wide needs the 1-based column of the first interval")
    return Profile(
        name=path.stem,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        files=tuple(files),
        dataset=dataset,
        layout=layout,
        settings=doc,
    )


class _Reader:
    """Reads one file with one profile."""

    def __init__(self, profile: Profile, label: str) -> None:
        self.p = profile
        self.s = profile.settings
        self.label = label
        self.rows: list[tuple] = []
        self.bad: list[tuple[int, str, str, str]] = []
        decimal = self.s.get("decimal", ".")
        self.number = re.compile(
            r"[+-]?([0-9]+(" + re.escape(decimal) + r"[0-9]*)?|" + re.escape(decimal) + r"[0-9]+)"
        )
        self.minutes = self.s.get("interval_minutes", 0)

    def convert(self, data: bytes) -> Conversion:
        where = f"{self.label} (profile {self.p.name})"
        try:
            text = data.decode(self.s.get("encoding", "utf-8")).removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise SourceError(
                f"{where}: line {line} is not valid {self.s.get('encoding', 'utf-8')}"
            ) from None
        reader = csv.reader(
            io.StringIO(text, newline=""), delimiter=self.s.get("delimiter", ","), strict=True
        )
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(f"{where}: the file is empty")
            header = [h.strip() for h in header]
            self.cols = self._columns(header, where)
            previous = reader.line_num
            for fields in reader:
                line_no, previous = previous + 1, reader.line_num
                if not any(f.strip() for f in fields):
                    continue
                self._row(line_no, [f.strip() for f in fields], len(header))
        except csv.Error as exc:
            raise SourceError(f"{where} cannot be parsed as CSV: line {reader.line_num}: {exc}") from None
        return Conversion(
            f"profile {self.p.name}",
            self.p.dataset,
            rows_table(self.p.dataset, self.rows),
            quarantine_table(self.bad),
        )

    def _columns(self, header: list[str], where: str) -> dict[str, int]:
        """Role -> 0-based position of the first header name of the role present in the file."""
        out = {}
        for role, names in self.s.get("columns", {}).items():
            names = [names] if isinstance(names, str) else names
            found = [header.index(n) for n in names if n in header]
            if not found:
                raise SourceError(
                    f"{where}: the header has none of {', '.join(map(repr, names))} (columns.{role})"
                )
            out[role] = found[0]
        for name in self.s.get("registers", {}):
            if name not in header:
                raise SourceError(f"{where}: the header has no register column {name!r} (registers)")
            out[f"register:{name}"] = header.index(name)
        return out

    def _row(self, line_no: int, f: list[str], n_header: int) -> None:
        record = self.s.get("delimiter", ",").join(f)
        n = len(f)
        if not (n == n_header or self.s.get("trailing_delimiter") and n == n_header + 1 and f[-1] == ""):
            self.bad.append(
                (line_no, "field_count", f"the line has {n} fields, the header has {n_header}", record)
            )
            return
        meter = self._meter(f)
        layout = self.p.layout
        day, problem = self._date(f)
        if layout == "long":
            self._long(line_no, f, record, meter, day, problem)
        elif layout == "wide":
            first = self.s["first_value_column"] - 1
            count = self.s.get("value_columns", n_header - first)
            for k in range(count):
                raw = f[first + k] if first + k < n else ""
                start = day + timedelta(minutes=k * self.minutes) if day else None
                self._interval(
                    line_no,
                    f"{record[:60]}... column {first + k + 1}",
                    meter,
                    start,
                    problem,
                    raw,
                    "A",
                    self.s.get("channel", "ACTIVE_IMPORT"),
                    1,
                )
        else:
            self._registers(line_no, f, meter, day, problem)

    def _meter(self, f: list[str]) -> str:
        if "meter_id" not in self.cols:
            return str(self.s["meter_id"])
        meter = f[self.cols["meter_id"]]
        if "meter_id_pattern" in self.s:
            match = re.fullmatch(self.s["meter_id_pattern"], meter)
            meter = match.group(1) if match else meter
        return meter

    def _date(self, f: list[str]) -> tuple[datetime | None, str | None]:
        formats = self.s.get("date_format", "%Y-%m-%d")
        at = None
        for date_format in [formats] if isinstance(formats, str) else formats:
            text, fmt = f[self.cols["date"]], date_format
            if "time" in self.cols:
                text, fmt = f"{text} {f[self.cols['time']]}", f"{fmt} {self.s.get('time_format', '%H:%M:%S')}"
            elif self.p.layout == "registers":
                text, fmt = f"{text} {self.s.get('read_time', '00:00')}", f"{fmt} %H:%M"
            try:
                at = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if at is None or not 1900 <= at.year <= 2099:
            return None, f"the time {text!r} does not fit the profile's date_format {formats!r}"
        if self.s.get("timestamp_marks") == "end":
            at -= timedelta(minutes=self.minutes)
        return at, None

    def _long(
        self, line_no: int, f: list[str], record: str, meter: str, at: datetime | None, problem: str | None
    ) -> None:
        status = f[self.cols["quality"]] if "quality" in self.cols else ""
        flag = self.s.get("quality", {}).get(status, "A" if "quality" not in self.cols else None)
        channel = self.s.get("channel", "ACTIVE_IMPORT")
        if "channel" in self.cols:
            channel = self.s.get("channels", {}).get(f[self.cols["channel"]])
        factor: Any = self.s.get("unit_factor", 1)
        if "unit" in self.cols:
            factor = self.s.get("units", {}).get(f[self.cols["unit"]])
        raw = f[self.cols["value"]]
        if problem is None and flag is None:
            problem = f"the quality code {status!r} is not in the profile's [quality]"
        elif problem is None and channel is None:
            problem = f"unsupported channel {f[self.cols['channel']]!r}: not in the profile's [channels]"
        elif problem is None and factor is None:
            problem = f"unsupported unit {f[self.cols['unit']]!r}: not in the profile's [units]"
        if problem is None and flag == "missing":
            self.bad.append(
                (
                    line_no,
                    "no_reading",
                    f"no reading (quality {status!r}): a missing interval, never a zero",
                    record,
                )
            )
            return
        self._interval(line_no, record, meter, at, problem, raw, flag or "A", channel or "", factor)

    def _interval(
        self,
        line_no: int,
        record: str,
        meter: str,
        at: datetime | None,
        problem: str | None,
        raw: str,
        flag: str,
        channel: str,
        factor: Any,
    ) -> None:
        value = None
        if problem is None and raw == "":
            self.bad.append(
                (
                    line_no,
                    "no_reading",
                    "no reading: the value is empty (a missing interval, never a zero)",
                    record,
                )
            )
            return
        if problem is None:
            value, problem = self._number(raw)
        if problem is None and value is not None and value < 0 and channel.endswith("IMPORT"):
            problem = f"a negative value {raw!r} on the import channel {channel}"
        if problem is not None or value is None or at is None:
            self.bad.append((line_no, "profile", problem or "unreadable", record))
            return
        kwh = f"{(abs(value) * Decimal(str(factor))).quantize(Decimal('0.000001')):f}"
        self.rows.append(
            (meter, channel, at.strftime("%Y-%m-%dT%H:%M:%S"), str(self.minutes), kwh, flag, line_no)
        )

    def _registers(
        self, line_no: int, f: list[str], meter: str, at: datetime | None, problem: str | None
    ) -> None:
        pattern = self.s.get("meter_pattern")
        for header, register in self.s["registers"].items():
            raw = f[self.cols[f"register:{header}"]]
            record = f"{meter},{header},{raw}"
            why = problem
            if why is None and pattern and not re.search(pattern, meter):
                why = f"meter {meter!r} does not match the profile's meter_pattern {pattern!r}"
            elif why is None and register == "unsupported":
                why = f"register column {header!r} is mapped to no register of register_reads (unsupported)"
            elif why is None and raw == "":
                self.bad.append((line_no, "no_reading", f"no reading: {header} is empty", record))
                continue
            value = None
            if why is None:
                value, why = self._number(raw)
            if why is not None or value is None or at is None:
                self.bad.append((line_no, "profile", why or "unreadable", record))
                continue
            index = f"{(value * Decimal(str(self.s.get('unit_factor', 1)))).quantize(Decimal('0.000001')):f}"
            self.rows.append((meter, at.strftime("%Y-%m-%dT%H:%M:%S"), register, index, "REGULAR", line_no))

    def _number(self, raw: str) -> tuple[Decimal | None, str | None]:
        if not self.number.fullmatch(raw):
            return None, f"the value {raw!r} is not a number with decimal {self.s.get('decimal', '.')!r}"
        try:
            return Decimal(raw.replace(",", ".")), None
        except InvalidOperation:
            return None, f"the value {raw!r} is not a number"
