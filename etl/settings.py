"""One settings object, read from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from etl.errors import MeterflowError

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

    A home may be an S3 URI, `s3://bucket/prefix` (etl/objectstore.py): `remote` is then that URI and
    `home` the local working copy every stage works in, `<METERFLOW_WORK_DIR>/<bucket>/<prefix>` (default
    METERFLOW_WORK_DIR: `$XDG_CACHE_HOME/meterflow/s3`, else `~/.cache/meterflow/s3`).
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
    remote: str | None = None  # the S3 home (`s3://bucket/prefix`) of which `home` is the working copy

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
        named = str(home or env.get("METERFLOW_HOME") or "data")
        remote = s3_uri(named)
        root = work_copy(remote) if remote else Path(named).absolute()
        temp = env.get("METERFLOW_TEMP_DIR")
        return cls(
            home=root,
            memory_limit=env.get("METERFLOW_MEMORY_LIMIT", "4GB"),
            threads=int(env.get("METERFLOW_THREADS", str(os.cpu_count() or 2))),
            temp_directory=Path(temp).absolute() if temp else None,
            max_file_bytes=int(float(env.get("METERFLOW_MAX_FILE_MB", "4096")) * 1024 * 1024),
            timezone=env.get("METERFLOW_TIMEZONE") or LOCAL_TZ,
            remote=remote,
        )

    @property
    def location(self) -> str:
        """The data home as every host names it: the S3 URI, or the local folder."""
        return self.remote or str(self.home)


def get_settings(home: str | Path | None = None) -> Settings:
    """The settings in force (see Settings for the environment variables)."""
    return Settings.from_env(home)


S3_URI = re.compile(r"s3:/+([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/+(.*?))?/*")
WORK_DIR_ENV = "METERFLOW_WORK_DIR"


def s3_uri(text: str) -> str | None:
    """`s3://bucket/prefix` (normalised: no repeated or trailing slash) when `text` names an S3 home, else
    None. `s3:/bucket/prefix` is taken too: a Path made of an S3 URI keeps one slash. Raises ValueError for
    an S3 URI whose bucket name S3 would refuse (a MeterflowError)."""
    if not text.startswith("s3:/"):
        return None
    match = S3_URI.fullmatch(text)
    if not match:
        raise MeterflowError(
            f"{text}: not an S3 data home; expected s3://bucket/prefix (bucket: 3 to 63 of a-z 0-9 . -)"
        )
    bucket, prefix = match.group(1), re.sub(r"/+", "/", match.group(2) or "")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def work_copy(uri: str) -> Path:
    """The local working copy of an S3 home: `<METERFLOW_WORK_DIR>/<bucket>/<prefix>`."""
    configured = os.environ.get(WORK_DIR_ENV)
    if configured:
        root = Path(configured).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(cache) / "meterflow" / "s3"
    return (root / uri.removeprefix("s3://")).absolute()
