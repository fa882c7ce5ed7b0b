"""Standard formats (NEM12, NEM13, Green Button) and vendor CSV source profiles, read into the contract's
reading datasets (CONTRACT.md §8; docs/sources.md).

find_source() tells which reader takes a file of landing/readings/ (by content for the standard formats,
by file name for a profile); SourceFile.read() converts it into contract CSV text that the ingest path
reads like any landing file, then puts the source line numbers and the reader's own quarantined records
back (adopt, add_quarantine).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from etl.contract import DATASETS
from etl.errors import ContractError
from etl.ingest.files import SPARE_BYTES, FileRead, LandingEntry, TextCopy
from etl.ingest.rows import RowCounts
from etl.settings import Settings
from etl.sources import greenbutton, nem12, nem13
from etl.sources.core import LINE_MAP, Conversion, Member, SourceError, members_of, write_contract_csv
from etl.sources.profiles import Profile, ProfileError, load_profiles

log = logging.getLogger(__name__)

SOURCE_SUFFIXES = (".csv", ".csv.gz", ".zip", ".xml")
HEAD_BYTES = 65536  # bytes of a file (or of its first member) looked at to tell its format
ESPI_NAMESPACE = "naesb.org/espi"
ATOM_NAMESPACE = "www.w3.org/2005/Atom"
# An Atom feed or entry as the root element, after the XML declaration, processing instructions, comments.
ATOM_ROOT = re.compile(r"(<\?[^>]*\?>\s*|<!--.*?-->\s*)*<([A-Za-z_][\w.-]*:)?(feed|entry)[\s>]", re.DOTALL)
READERS = {"NEM12": "interval_reads", "NEM13": "register_reads", "Green Button": "interval_reads"}


def sniff(head: str) -> str | None:
    """The standard format of a text that starts with `head`: NEM12, NEM13, Green Button, or None."""
    text = head.lstrip("\ufeff \t\r\n")
    first = text.split("\n", 1)[0].strip()
    kind = first.split(",", 1)[0].strip()
    if kind == "100":
        version = first.split(",")[1].strip().upper() if "," in first else ""
        return version if version in ("NEM12", "NEM13") else None
    if kind == "200":
        return "NEM12"
    if kind == "250":
        return "NEM13"
    if ATOM_ROOT.match(text) and ESPI_NAMESPACE in head and ATOM_NAMESPACE in head:
        return "Green Button"
    return None


@dataclass
class SourceFile:
    """A landing file that a source reader takes: its format or profile, and once read its conversion."""

    entry: LandingEntry  # with the dataset the reader writes and the file's stat
    reader: str  # NEM12, NEM13, Green Button or "profile <name>"
    profile: Profile | None = None
    conversion: Conversion | None = None
    warnings: list[str] = field(default_factory=list)

    def read(self, con: duckdb.DuckDBPyConnection, tmp: Path | None, max_bytes: int) -> FileRead:
        """Hash the file and, with `tmp`, convert it and write the contract CSV text at `tmp`.

        The hash of a profile's file covers the profile too: a corrected profile reads the file again.
        Raises OSError when the file cannot be read.
        """
        data = _read_regular(self.entry, max_bytes)
        digest = hashlib.sha256(data)
        if self.profile is not None:
            digest.update(b"\0profile\0" + self.profile.digest.encode())
        sha = digest.hexdigest()
        if tmp is None:
            return FileRead(sha, None, None)
        if len(data) > max_bytes:
            return FileRead(sha, None, f"{self.entry.source_file} is {len(data)} bytes, above the limit")
        try:
            self.conversion = convert(con, data, self.entry.source_file, self.reader, self.profile, max_bytes)
        except ContractError as exc:
            return FileRead(sha, None, str(exc))
        self.warnings = self.conversion.warnings
        for warning in self.warnings:
            log.warning("%s", warning)
        write_contract_csv(con, self.conversion, tmp)
        converted = tmp.read_bytes()
        spare = next((b for b in SPARE_BYTES if b not in converted), None)
        if spare is None or b"\r" in converted:
            why = "control bytes 0x1c-0x1f" if spare is None else "a carriage return inside a value"
            return FileRead(sha, None, f"{self.entry.source_file} ({self.reader}): the data holds {why}")
        return FileRead(sha, TextCopy(tmp, b'"' in converted, False, spare.decode()), None)

    def adopt(self, counts: RowCounts) -> RowCounts:
        """After check_rows (with LINE_MAP): count the records the reader quarantined itself."""
        assert self.conversion is not None
        extra = self.conversion.quarantined.num_rows
        return replace(
            counts, rows_in=counts.rows_in + extra, rows_quarantined=counts.rows_quarantined + extra
        )

    def add_quarantine(self, con: duckdb.DuckDBPyConnection) -> None:
        """After quarantine_rows: add the records the reader quarantined itself to `quarantined`."""
        assert self.conversion is not None
        con.register("reader_quarantine", self.conversion.quarantined)
        try:
            con.execute("""
                create or replace temp table quarantined as
                select line_no, rule, reason, record from quarantined
                union all select line_no, rule, reason, record from reader_quarantine
                order by line_no
            """)
        finally:
            con.unregister("reader_quarantine")

    @staticmethod
    def cleanup(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"drop table if exists {LINE_MAP}")


def convert(
    con: duckdb.DuckDBPyConnection,
    data: bytes,
    label: str,
    reader: str,
    profile: Profile | None,
    max_bytes: int = 1 << 62,
) -> Conversion:
    """Convert a source file's bytes with `reader`. Raises SourceError when it cannot be read at all."""
    if profile is not None:
        return profile.convert(data, label)
    every = members_of(data, label, max_bytes)
    parts = [m for m in every if sniff(m.text[:HEAD_BYTES]) == reader]
    skipped = [m.name for m in every if m.name and m not in parts]
    if reader == "NEM12":
        conversion = nem12.convert(con, parts, label)
    elif reader == "NEM13":
        conversion = nem13.convert(parts, label)
    else:
        conversion = greenbutton.convert(parts, label)
    conversion.warnings += [f"{label}: member {name} is not {reader}: not read" for name in skipped]
    if conversion.records_in == 0:
        raise SourceError(f"{label} ({reader}): the file holds no reading at all")
    return conversion


class SourceFinder:
    """Which reader takes each file of landing/readings/: loads the data home's profiles once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.profiles, self.problems = load_profiles(settings)
        for problem in self.problems:
            log.error("%s", problem)

    def find(self, entry: LandingEntry) -> SourceFile | str | None:
        """The SourceFile for `entry`, a reason to leave it unread (an invalid profile claims its name),
        or None when no source reader takes it (the contract CSV path decides)."""
        folder, _, name = entry.source_file.partition("/")
        if folder != "readings" or not name.lower().endswith(SOURCE_SUFFIXES) or entry.path.is_symlink():
            return None
        if not entry.path.is_file():
            return None
        try:
            reader = sniff(_head(entry.path, name))
        except OSError:
            return None
        profile = None
        if reader is None:
            for problem in self.problems:
                if problem.claims(name):
                    return f"{entry.source_file} waits unread: {problem}"
            profile = next((p for p in self.profiles if p.matches(name)), None)
            if profile is None:
                return None
            reader = f"profile {profile.name}"
        dataset = DATASETS[profile.dataset if profile else READERS[reader]]
        st = entry.path.lstat()
        stat_key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        return SourceFile(
            replace(entry, dataset=dataset, skip_reason=None, stat_key=stat_key), reader, profile
        )


def _head(path: Path, name: str) -> str:
    """The first HEAD_BYTES of a file's text (of its first member, for a zip), decoded leniently."""
    with open(path, "rb") as fh:
        raw = fh.read() if name.lower().endswith(".zip") else fh.read(HEAD_BYTES)
    try:
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                names = sorted(i.filename for i in archive.infolist() if not i.is_dir())
                heads = []
                for member in names:
                    with archive.open(member) as fh:
                        heads.append(fh.read(HEAD_BYTES).decode("utf-8", "replace"))
                return next((h for h in heads if sniff(h)), heads[0] if heads else "")
        if name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                raw = gz.read(HEAD_BYTES)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
        return ""
    return raw.decode("utf-8", "replace")


def _read_regular(entry: LandingEntry, max_bytes: int) -> bytes:
    """The bytes of a regular file, without following a link. Raises OSError otherwise."""
    fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(max_bytes + 1)


__all__ = [
    "LINE_MAP",
    "Member",
    "ProfileError",
    "SourceError",
    "SourceFile",
    "SourceFinder",
    "convert",
    "sniff",
]
