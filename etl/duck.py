"""DuckDB connections configured from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from etl.settings import Settings
from etl.timezone import check_zone, ensure_home_zone

if TYPE_CHECKING:
    import duckdb


def connect(
    settings: Settings, database: str | Path = ":memory:", read_only: bool = False, record_zone: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open DuckDB with meterflow's memory limit, threads, spill directory and the company's time zone.

    The zone is checked against the home's; `record_zone` False (a dry run) leaves a new home unrecorded.
    """
    import duckdb

    ensure_home_zone(settings.home, check_zone(settings.timezone), write=record_zone)
    settings.duckdb_temp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), read_only=read_only)
    con.execute(f"set memory_limit = '{settings.memory_limit}'")
    con.execute(f"set threads = {int(settings.threads)}")
    con.execute(f"set temp_directory = '{settings.duckdb_temp.as_posix()}'")
    con.execute(f"set TimeZone = '{settings.timezone}'")
    con.execute("set preserve_insertion_order = true")
    return con
