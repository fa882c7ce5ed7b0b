"""The company's time zone (CONTRACT.md §2): which zone a data home uses and how SQL converts times.

The lake keeps local wall time for grouping (a local month is a plain date_trunc) and, for interval
reads, the UTC instant as well (`interval_start_utc`), which is unambiguous on the repeated hour of a
daylight saving change. A zone whose UTC offset has not changed since 1976 (Asia/Ho_Chi_Minh: +07:00
since 1975) is converted with fixed arithmetic at that offset, which is exact and fast; any other zone
with the tz database (DuckDB's ICU).

The zone belongs to the data home: the first connection records it in `lake/_timezone.json`, and a
later one with another zone is refused while the lake holds data.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from etl.errors import MeterflowError

if TYPE_CHECKING:
    import duckdb

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
FIXED_SINCE_YEAR = 1976
RECORD_NAME = "_timezone.json"


class TimezoneError(MeterflowError):
    """METERFLOW_TIMEZONE is not a zone, or differs from the zone the data home was built in."""


def check_zone(zone: str) -> str:
    """`zone` when it is an IANA zone name; raises TimezoneError otherwise."""
    if zone not in available_timezones():
        raise TimezoneError(
            f"METERFLOW_TIMEZONE={zone!r} is not an IANA time zone name (e.g. Europe/Brussels)"
        )
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimezoneError(f"METERFLOW_TIMEZONE={zone!r} cannot be loaded: {exc}") from None
    return zone


@lru_cache(maxsize=16)
def fixed_offset_us(zone: str) -> int | None:
    """The zone's UTC offset in microseconds when it has not changed since 1976, else None."""
    tz = ZoneInfo(zone)
    moment = datetime(FIXED_SINCE_YEAR, 1, 1, tzinfo=UTC)
    offsets = set()
    while moment.year < 2100:
        offsets.add(moment.astimezone(tz).utcoffset())
        moment += timedelta(days=7)
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    assert offset is not None
    return int(offset / timedelta(microseconds=1))


def local_sql(instant: str, zone: str) -> str:
    """SQL for the local wall TIMESTAMP of `instant`, a TIMESTAMP holding UTC."""
    fixed = fixed_offset_us(zone)
    if fixed is not None:
        return f"make_timestamp(epoch_us({instant}) + {fixed})"
    return f"timezone('{zone}', timezone('UTC', {instant}))"


def utc_sql(local: str, zone: str) -> str:
    """SQL for the UTC instant (a TIMESTAMP) of local wall time `local`; on the repeated hour the later
    instant, for a time that does not exist the one an hour on (ingestion quarantines such times)."""
    fixed = fixed_offset_us(zone)
    if fixed is not None:
        return f"make_timestamp(epoch_us({local}) - {fixed})"
    return f"timezone('UTC', timezone('{zone}', {local}))"


def session_zone(con: duckdb.DuckDBPyConnection) -> str:
    """The company's zone a connection was opened with (its DuckDB TimeZone setting)."""
    row = con.execute("select current_setting('TimeZone')").fetchone()
    assert row is not None
    return str(row[0])


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the SQL models' conversion macros for the connection's zone: `local_time(utc)` and
    `utc_instant(local)`."""
    zone = session_zone(con)
    con.execute(f"create or replace temp macro local_time(u) as {local_sql('u', zone)}")
    con.execute(f"create or replace temp macro utc_instant(l) as {utc_sql('l', zone)}")


def month_bounds_utc(start: datetime, end: datetime, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants (naive) of local wall times `start` and `end` (the earlier one when repeated)."""
    tz = ZoneInfo(zone)
    fixed = fixed_offset_us(zone)

    def to_utc(local: datetime) -> datetime:
        if fixed is not None:
            return local - timedelta(microseconds=fixed)
        return local.replace(tzinfo=tz, fold=0).astimezone(UTC).replace(tzinfo=None)

    return to_utc(start), to_utc(end)


def ensure_home_zone(home: Path, zone: str, write: bool = True) -> None:
    """Record `zone` as the home's zone on first use (unless `write` is False); raise TimezoneError when
    the home has another one.

    A home whose lake holds data but no record (built before zones were recorded) was built in the
    default zone.
    """
    lake = home / "lake"
    record = lake / RECORD_NAME
    if record.exists():
        recorded = json.loads(record.read_text(encoding="utf-8"))["timezone"]
    elif lake.exists() and any(p.name != RECORD_NAME for p in lake.iterdir()):
        recorded = DEFAULT_TIMEZONE
    else:
        recorded = None
    if recorded is not None and recorded != zone:
        raise TimezoneError(
            f"METERFLOW_TIMEZONE is {zone} but the data home {home} holds data in {recorded}: "
            f"the time zone belongs to the data home and cannot change; use a new METERFLOW_HOME "
            f"or set METERFLOW_TIMEZONE={recorded}"
        )
    if write and not record.exists():
        lake.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".{RECORD_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"timezone": zone}) + "\n", encoding="utf-8")
        os.replace(tmp, record)
