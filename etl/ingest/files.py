"""Landing files as bytes: which entries are read, their sha256, and checked UTF-8 text for DuckDB.

A landing file is read in chunks (Settings.read_chunk_bytes): its bytes are hashed, gunzipped
(`.csv.gz`) and checked as UTF-8, in the same pass. DuckDB then reads a file under `lake/_tmp/` whose
name is a uuid, so that a landing name with spaces, quotes or glob characters never reaches SQL:

- a symbolic link to a plain `.csv` without carriage returns (no copy), whose size, mtime and inode must
  not change until it has been read;
- otherwise a copy: gunzipped, without a leading BOM, CRLF as LF, and each carriage return that ends no
  line as CR_STANDIN (DuckDB would take it for a line break; the row checks turn it back). None of this
  moves a line break, so line numbers are the landing file's. A `.csv.gz` is copied in the same pass, a
  `.csv` with carriage returns in a second one.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from etl.contract import FOLDERS, Dataset, dataset_for_file
from etl.errors import ContractError
from etl.settings import Settings

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
SUFFIXES = (".csv", ".csv.gz")
# Control bytes that text CSV does not use: DuckDB reads the text line by line with one of them, absent
# from the file, as its column delimiter, so that no byte of a line is taken for a delimiter.
SPARE_BYTES = (b"\x1f", b"\x1e", b"\x1d", b"\x1c")
CR_STANDIN = b"\x1a"
# isal_zlib.error is an exception class (the package's type stubs declare an instance)
INFLATE_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]

StatKey = tuple[int, int, int, int]


@dataclass(frozen=True)
class LandingEntry:
    """One entry of a landing folder, with the dataset it belongs to or why it is skipped."""

    source_file: str  # path relative to landing/, e.g. readings/interval_reads_20250901.csv.gz
    path: Path
    dataset: Dataset | None
    skip_reason: str | None
    stat_key: StatKey | None = None  # size, mtime, inode, ctime: unchanged bytes keep all four

    @property
    def gzipped(self) -> bool:
        return self.source_file.endswith(".gz")

    @property
    def size(self) -> int:
        return self.stat_key[0] if self.stat_key else 0


@dataclass(frozen=True)
class TextCopy:
    """The text DuckDB reads for a landing file: a symbolic link to it or a checked copy, in lake/_tmp."""

    path: Path
    has_quote: bool
    bare_cr: bool  # CR_STANDIN stands for bare carriage returns (copies only)
    delimiter: str  # a byte absent from the file
    linked: tuple[int, int, int] | None = None  # a link: size, mtime and inode the file must keep

    def unchanged(self) -> bool:
        """False when a linked landing file was modified or replaced after it was hashed."""
        if self.linked is None:
            return True
        st = os.stat(self.path)
        return (st.st_size, st.st_mtime_ns, st.st_ino) == self.linked


@dataclass(frozen=True)
class FileRead:
    """A landing file's sha256 and, when asked for and valid, its text for DuckDB; else why it is invalid."""

    sha256: str
    text: TextCopy | None
    error: str | None


def landing_entries(settings: Settings, folder: str) -> list[LandingEntry]:
    """The entries of landing/<folder>/ in order of name, each with its dataset or a skip reason."""
    base = settings.landing / folder
    for path in (settings.landing, base):
        if path.is_symlink():
            reason = f"{path.relative_to(settings.home)} is a symbolic link: nothing under it is read"
            return [LandingEntry(folder, base, None, reason)]
    if not base.is_dir():
        return []
    with os.scandir(base) as it:
        entries = sorted(it, key=lambda e: e.name)
    return [_classify(folder, e) for e in entries]


def _classify(folder: str, entry: os.DirEntry[str]) -> LandingEntry:
    name = entry.name
    label = f"{folder}/{name}"
    path = Path(entry.path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(label).decode("utf-8", "backslashreplace")
        return LandingEntry(shown, path, None, f"{shown}: the file name is not valid UTF-8")
    if entry.is_symlink():
        return LandingEntry(label, path, None, f"{label} is a symbolic link: links are never followed")
    if entry.is_dir(follow_symlinks=False):
        reason = f"{label} is a folder: only files directly inside landing/{folder}/ are read"
        return LandingEntry(label, path, None, reason)
    if not entry.is_file(follow_symlinks=False):
        reason = f"{label} is not a regular file (a fifo, socket or device)"
        return LandingEntry(label, path, None, reason)
    if not name.endswith(SUFFIXES):
        reason = f"{label}: a landing file name must end .csv or .csv.gz"
        return LandingEntry(label, path, None, reason)
    dataset = dataset_for_file(folder, name)
    if dataset is None:
        expected = ", ".join(f"{d}_*" for d in FOLDERS[folder])
        reason = f"{label} matches no dataset of {folder} (expected {expected})"
        return LandingEntry(label, path, None, reason)
    st = entry.stat(follow_symlinks=False)
    return LandingEntry(label, path, dataset, None, (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))


def read_landing_file(entry: LandingEntry, tmp: Path | None, max_bytes: int, chunk: int) -> FileRead:
    """Hash a landing file and, when `tmp` is given, check it and put the text DuckDB reads at `tmp`.

    The file is read `chunk` bytes at a time; nothing depends on where the chunks fall.

    Raises OSError when the entry cannot be opened as a regular file, or changes while it is read (the
    next run tries again). A file that breaks the contract as a whole is not an exception: FileRead.error
    says why.
    """
    with _open_regular(entry) as src:
        before = _fstat(src)
        if tmp is None:
            read = FileRead(_hash(src, chunk), None, None)
        elif entry.gzipped:
            with open(tmp, "wb") as out:
                read = _read(src, _TextChecker(entry.source_file, True, max_bytes, chunk, out, tmp), tmp)
        else:
            checker = _TextChecker(entry.source_file, False, max_bytes, chunk, None, src)
            read = _read(src, checker, tmp)
            if read.text is not None and checker.saw_cr:
                src.seek(0)
                with open(tmp, "wb") as out:
                    copier = _TextChecker(entry.source_file, False, max_bytes, chunk, out, tmp)
                    read = _read(src, copier, tmp)
            elif read.text is not None:
                read = FileRead(read.sha256, _link(entry, src, tmp, read.text, before), None)
        if _fstat(src) != before:
            raise OSError(f"{entry.source_file} changed while it was read")
    return read


def _fstat(src: BinaryIO) -> tuple[int, int]:
    st = os.fstat(src.fileno())
    return st.st_size, st.st_mtime_ns


def _hash(src: BinaryIO, size: int) -> str:
    digest = hashlib.sha256()
    while chunk := src.read(size):
        digest.update(chunk)
    return digest.hexdigest()


def _read(src: BinaryIO, checker: _TextChecker, tmp: Path) -> FileRead:
    """Hash every byte; check (and copy) them until the first contract breach."""
    digest = hashlib.sha256()
    error = None
    while chunk := src.read(checker.chunk):
        digest.update(chunk)
        if error is None:
            try:
                checker.feed(chunk)
            except ContractError as exc:
                error = str(exc)
    text = None
    if error is None:
        try:
            text = checker.finish(tmp)
        except ContractError as exc:
            error = str(exc)
    return FileRead(digest.hexdigest(), text, error)


def _link(entry: LandingEntry, src: BinaryIO, tmp: Path, text: TextCopy, before: tuple[int, int]) -> TextCopy:
    """A symbolic link at `tmp` to the landing file just read.

    Not a hard link: that would change the landing file's ctime, which the hash cache relies on.
    """
    os.symlink(entry.path.absolute(), tmp)
    ino = os.fstat(src.fileno()).st_ino
    if os.stat(tmp).st_ino != ino:
        raise OSError(f"{entry.source_file} was replaced while it was read")
    return TextCopy(tmp, text.has_quote, False, text.delimiter, linked=(*before, ino))


def _open_regular(entry: LandingEntry) -> BinaryIO:
    """Open without following a link. Raises OSError when the entry is no longer a regular file."""
    fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{entry.source_file} is no longer a regular file")
    return os.fdopen(fd, "rb", buffering=0)


class _Gunzip:
    """Streaming gunzip of one or more gzip members. Raises ContractError on bad or truncated data.

    ISA-L's inflate (the isal package, zlib's interface) takes about half the time of zlib's on the
    landing files, and this pass runs on one core while DuckDB waits for its text.
    """

    def __init__(self, label: str, chunk: int) -> None:
        self._label = label
        self._chunk = chunk
        self._zlib = isal_zlib.decompressobj(wbits=16 + isal_zlib.MAX_WBITS)
        self._started = False
        self._in_member = False

    def feed(self, raw: bytes) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            if not raw.startswith(GZIP_MAGIC):
                raise ContractError(f"{self._label} is named .csv.gz but is not gzip-compressed")
        data = raw
        while data:
            self._in_member = True
            try:
                out = self._zlib.decompress(data, self._chunk)
            except INFLATE_ERROR as exc:
                raise ContractError(f"{self._label} is not a valid gzip file ({exc})") from None
            yield out
            data = self._zlib.unconsumed_tail
            if self._zlib.eof:
                self._in_member = False
                rest = self._zlib.unused_data
                self._zlib = isal_zlib.decompressobj(wbits=16 + isal_zlib.MAX_WBITS)
                # Some writers pad the last member with zero bytes; anything else is another member.
                data = rest if rest.strip(b"\0") else b""

    def finish(self) -> None:
        if not self._started:
            raise ContractError(f"{self._label} is named .csv.gz but is empty, not gzip-compressed")
        if self._in_member:
            raise ContractError(f"{self._label} is truncated: its gzip stream ends before its end mark")


class _TextChecker:
    """Checks a landing file's (decompressed) bytes as UTF-8 CSV text; with `out`, writes the copy.

    Without `out` it only looks; a carriage return anywhere then calls for a copy (`saw_cr`).
    `lines_source` is re-read to name the line of an invalid byte: the copy, or the plain landing file.
    """

    def __init__(
        self,
        label: str,
        gzipped: bool,
        max_bytes: int,
        chunk: int,
        out: BinaryIO | None,
        lines_source: Path | BinaryIO,
    ) -> None:
        self._label = label
        self.chunk = chunk
        self._gunzip = _Gunzip(label, chunk) if gzipped else None
        self._out = out
        self._lines_source = lines_source
        self._first_raw = True
        self._max = max_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._size = 0  # text bytes checked so far, after the BOM
        self._bom = False
        self._head: bytes | None = b""  # the first bytes, until a BOM can be told apart; then None
        self._cr = b""  # a CR that ended the previous chunk: half of a CRLF, or a bare CR
        self._absent = list(SPARE_BYTES)
        self._standin_seen = False
        self._has_quote = False
        self._bare_cr = False
        self.saw_cr = False

    def feed(self, raw: bytes) -> None:
        if self._first_raw:
            self._first_raw = False
            if self._gunzip is None and raw.startswith(GZIP_MAGIC):
                raise ContractError(f"{self._label} is gzip-compressed but named .csv (name it .csv.gz)")
        for data in self._gunzip.feed(raw) if self._gunzip else (raw,):
            self._take(data)

    def finish(self, path: Path) -> TextCopy:
        if self._gunzip is not None:
            self._gunzip.finish()
        if self._head is not None:
            head = self._head
            self._head = None
            self._bom = head.startswith(BOM)
            self._step(head.removeprefix(BOM))
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            line = self._line_at(self._size)
            raise ContractError(
                f"{self._label} is not valid UTF-8: it ends inside a character (line {line})"
            ) from None
        if self._cr and self._out is not None:
            self._bare_cr = True
            self._out.write(CR_STANDIN)
        if self._bare_cr and self._standin_seen:
            raise ContractError(
                f"{self._label} cannot be parsed as CSV: it has both bare carriage returns and 0x1a bytes"
            )
        if not self._absent:
            raise ContractError(f"{self._label} is not a text CSV file: it has the control bytes 0x1c-0x1f")
        return TextCopy(path, self._has_quote, self._bare_cr, self._absent[0].decode())

    def _take(self, data: bytes) -> None:
        if self._head is not None:
            head = self._head + data
            if len(head) < len(BOM):
                self._head = head
                return
            self._head = None
            self._bom = head.startswith(BOM)
            data = head.removeprefix(BOM)
        self._step(data)

    def _step(self, data: bytes) -> None:
        self._check(data)
        self._size += len(data)
        self._lines(data)

    def _check(self, data: bytes) -> None:
        """Raises ContractError for bytes that are not UTF-8 or above the size limit."""
        if self._size + len(data) > self._max:
            raise ContractError(
                f"{self._label} holds more than {self._max} bytes of CSV, the limit (METERFLOW_MAX_FILE_MB)"
            )
        pending = self._decoder.getstate()[0]
        if pending or not data.isascii():
            try:
                self._decoder.decode(data)
            except UnicodeDecodeError as exc:
                at = self._size + max(exc.start - len(pending), 0)
                byte = (pending + data)[exc.start]
                line = self._line_at(at, data)
                raise ContractError(
                    f"{self._label} is not valid UTF-8: line {line} has the byte 0x{byte:02x}, "
                    "which starts no UTF-8 character (save the file as UTF-8)"
                ) from None
        # Most chunks have none of these bytes; one scan each finds out.
        if self._absent[0] in data:
            self._absent = [b for b in self._absent if b not in data]
        self._standin_seen = self._standin_seen or CR_STANDIN in data
        self._has_quote = self._has_quote or b'"' in data

    def _lines(self, data: bytes) -> None:
        """With `out`, write the data with LF line ends and CR_STANDIN for bare carriage returns."""
        if self._out is None:
            self.saw_cr = self.saw_cr or b"\r" in data
            return
        if self._cr:
            data, self._cr = self._cr + data, b""
        if b"\r" in data:
            if data.endswith(b"\r"):
                data, self._cr = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n")
            if b"\r" in data:
                self._bare_cr = True
                data = data.replace(b"\r", CR_STANDIN)
        self._out.write(data)

    def _line_at(self, offset: int, current: bytes = b"") -> int:
        """The line number of text byte `offset`: line breaks in what was checked before, plus one.

        Only called for an error message, so it may read the file again.
        """
        done = self._size
        newlines = current[: offset - done].count(b"\n")
        if isinstance(self._lines_source, Path):
            self._out.flush()  # type: ignore[union-attr]
            with open(self._lines_source, "rb") as fh:
                newlines += _count_newlines(fh, done, self.chunk)
        else:
            here = self._lines_source.tell()
            self._lines_source.seek(3 if self._bom else 0)
            newlines += _count_newlines(self._lines_source, done, self.chunk)
            self._lines_source.seek(here)
        return newlines + 1


def _count_newlines(fh: BinaryIO, limit: int, size: int) -> int:
    count = 0
    while limit > 0 and (chunk := fh.read(min(size, limit))):
        count += chunk.count(b"\n")
        limit -= len(chunk)
    return count
