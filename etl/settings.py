"""One settings object, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOCAL_TZ = "Asia/Ho_Chi_Minh"  # the default company time zone (CONTRACT.md §2)


@dataclass(frozen=True)
class Settings:
    """Where meterflow keeps its data and how hard DuckDB may work.

    Environment variables:
    METERFLOW_HOME (default ./data), METERFLOW_MEMORY_LIMIT (DuckDB memory_limit, default 4GB),
    METERFLOW_THREADS (DuckDB threads, default: the machine's cores), METERFLOW_TEMP_DIR (DuckDB spill
    directory, default <home>/tmp/duckdb), METERFLOW_MAX_FILE_MB (largest landing file accepted, default
    4096), METERFLOW_TIMEZONE (the company's IANA time zone, default Asia/Ho_Chi_Minh; it belongs to the
    data home, see etl/timezone.py).
    """

    home: Path
    memory_limit: str = "4GB"
    threads: int = 2
    temp_directory: Path | None = None
    max_file_bytes: int = 4096 * 1024 * 1024
    # Bytes of a landing file read at a time: Python's hash, gunzip and copy chunks and DuckDB's CSV
    # buffer. Only tests change it, to put many chunk boundaries into small files.
    read_chunk_bytes: int = 8 * 1024 * 1024
    timezone: str = LOCAL_TZ

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def marts_path(self) -> Path:
        return self.warehouse / "marts.duckdb"

    @property
    def state(self) -> Path:
        """Locks and run reports; never data that a figure depends on."""
        return self.home / "state"

    @property
    def docs(self) -> Path:
        """Generated documentation: GX Data Docs, reports."""
        return self.home / "docs"

    @property
    def duckdb_temp(self) -> Path:
        return self.temp_directory or (self.home / "tmp" / "duckdb")

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        """Read settings from the environment; `home` overrides METERFLOW_HOME."""
        env = os.environ
        root = Path(home or env.get("METERFLOW_HOME") or "data").absolute()
        temp = env.get("METERFLOW_TEMP_DIR")
        return cls(
            home=root,
            memory_limit=env.get("METERFLOW_MEMORY_LIMIT", "4GB"),
            threads=int(env.get("METERFLOW_THREADS", str(os.cpu_count() or 2))),
            temp_directory=Path(temp).absolute() if temp else None,
            max_file_bytes=int(float(env.get("METERFLOW_MAX_FILE_MB", "4096")) * 1024 * 1024),
            timezone=env.get("METERFLOW_TIMEZONE") or LOCAL_TZ,
        )


def get_settings(home: str | Path | None = None) -> Settings:
    """The settings in force (see Settings for the environment variables)."""
    return Settings.from_env(home)
