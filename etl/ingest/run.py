"""Landing -> lake: each landing file not yet ingested becomes typed raw Parquet, quarantine rows and one
manifest row (CONTRACT.md §1-2; the choices are in docs/ingestion.md).

Per file, under the data home's "ingest" lock: hash and check the bytes (etl.ingest.files), type and
check the rows in DuckDB (etl.ingest.rows), then publish raw Parquet per partition, the quarantine file,
and the manifest row last. A file counts as ingested only once its manifest row exists, so a run that
stops half-way leaves files that readers ignore and the next run deletes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from etl.contract import DATASETS, FOLDERS, LINEAGE_COLUMNS, SNAPSHOT_COLUMN, Dataset
from etl.duck import connect
from etl.errors import ContractError
from etl.ingest.files import FileRead, LandingEntry, landing_entries, read_landing_file
from etl.ingest.rows import RowCounts, check_rows, drop_temp, lit, partition_filter, q, quarantine_rows
from etl.lake import (
    MANIFEST_COLUMNS,
    QUARANTINE_COLUMNS,
    committed_stems,
    copy_to_parquet,
    file_stem,
    layer_dir,
    manifest_dir,
    new_tmp_path,
    partition_name,
    quarantine_dir,
    raw_file,
    read_manifest,
    remove_abandoned,
    tmp_dir,
    write_json_atomic,
)
from etl.lock import data_home_lock
from etl.settings import Settings
from etl.sources import LINE_MAP, SourceFile, SourceFinder

log = logging.getLogger(__name__)

INGESTED, REJECTED, DUPLICATE, SKIPPED = "INGESTED", "REJECTED", "DUPLICATE", "SKIPPED"
INGEST_LOCK = "ingest"
INGEST_LOCK_WAIT = 600.0  # seconds: concurrent ingestion DAGs queue rather than fail
TMP_MAX_AGE = 3600.0  # seconds: a file in lake/_tmp this old belongs to no live run
HASH_CACHE = "ingest_hashes.json"  # in state/: sha256 of landing files by path and stat


@dataclass
class FileResult:
    """One landing entry looked at in a run."""

    source_file: str  # path relative to landing/
    dataset: str | None
    status: str  # INGESTED, REJECTED, DUPLICATE or SKIPPED
    reason: str | None  # why it was rejected, skipped or a duplicate: file, rule and line where known
    rows_in: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    partitions: list[str] = field(default_factory=list)
    file_hash: str | None = None
    ingest_seq: int | None = None
    seen_before: bool = False  # a DUPLICATE of the same name: this very file was taken before


@dataclass
class IngestReport:
    """What one ingestion run did with each landing entry."""

    run_id: str
    files: list[FileResult]

    def by_dataset(self) -> list[dict]:
        """Per dataset (None for entries of no dataset): files in all and per status, rows in, accepted and
        quarantined."""
        statuses = [s.lower() for s in (INGESTED, DUPLICATE, REJECTED, SKIPPED)]
        rows: dict[str | None, dict] = {}
        for f in self.files:
            empty = {"dataset": f.dataset, "files": 0} | dict.fromkeys(statuses, 0)
            row = rows.setdefault(
                f.dataset, empty | {"rows_in": 0, "rows_accepted": 0, "rows_quarantined": 0}
            )
            row["files"] += 1
            row[f.status.lower()] += 1
            row["rows_in"] += f.rows_in
            row["rows_accepted"] += f.rows_accepted
            row["rows_quarantined"] += f.rows_quarantined
        return [rows[d] for d in [*DATASETS, None] if d in rows]

    @property
    def changed(self) -> bool:
        """True when the run added manifest rows (files ingested or rejected)."""
        return any(f.status in (INGESTED, REJECTED) for f in self.files)


def ingest(
    settings: Settings,
    run_id: str,
    folders: Sequence[str] | None = None,
    ingested_at: datetime | None = None,
) -> IngestReport:
    """Ingest every landing file of `folders` (default: all) not ingested before.

    Raises LockError when another run keeps the ingest lock for INGEST_LOCK_WAIT seconds, ValueError for
    an unknown folder. Rejected files and quarantined rows are in the report, not raised.
    """
    chosen = _folders(folders)
    at = _utc_naive(ingested_at or datetime.now(UTC))
    with data_home_lock(settings, INGEST_LOCK, wait=INGEST_LOCK_WAIT):
        remove_orphans(settings)
        con = connect(settings)
        try:
            run = _Run(settings, con, run_id, at)
            files = [run.take(e) for folder in chosen for e in landing_entries(settings, folder)]
            run.save_hashes(chosen)
        finally:
            con.close()
    report = IngestReport(run_id, files)
    log.info("%s", ingest_summary(report))
    return report


SUMMARY_COLUMNS = (
    ("dataset", "dataset"),
    ("ingested", "new files"),
    ("duplicate", "duplicates"),
    ("rejected", "rejected"),
    ("skipped", "skipped"),
    ("rows_in", "rows in"),
    ("rows_accepted", "accepted"),
    ("rows_quarantined", "quarantined"),
)


def ingest_summary(report: IngestReport) -> str:
    """What a run did, for a task log: one line for the files taken before (however many), and a table
    of the datasets of the others (duplicates there: the same bytes under another name)."""
    seen = [f for f in report.files if f.seen_before]
    lines = [f"ingestion {report.run_id}:"]
    if seen:
        lines.append(f"{len(seen)} landing files were ingested before, unchanged: nothing to do")
    rest = IngestReport(report.run_id, [f for f in report.files if not f.seen_before]).by_dataset()
    if not rest:
        lines.append("no new landing file")
        return "\n".join(lines)
    cells = [[label for _key, label in SUMMARY_COLUMNS]]
    cells += [
        [row["dataset"] or "(none)", *(f"{row[key]:,}" for key, _label in SUMMARY_COLUMNS[1:])]
        for row in rest
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(SUMMARY_COLUMNS))]
    for r in cells:
        lines.append(
            "  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])
        )
    return "\n".join(lines)


def _folders(folders: Sequence[str] | None) -> list[str]:
    """The chosen folders in contract order. Raises ValueError for an unknown one."""
    if folders is None:
        return list(FOLDERS)
    unknown = sorted(set(folders) - set(FOLDERS))
    if unknown:
        raise ValueError(
            f"unknown landing folder(s) {', '.join(unknown)}; expected some of {', '.join(FOLDERS)}"
        )
    return [f for f in FOLDERS if f in folders]


def _utc_naive(at: datetime) -> datetime:
    """UTC wall time without tzinfo, as _ingested_at is stored (a naive value is taken as UTC)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def remove_orphans(settings: Settings) -> list[Path]:
    """Delete raw and quarantine Parquet without a manifest row, and leftovers in lake/_tmp.

    Call it only while holding the ingest lock: a file being written by a live run has no manifest row
    yet either. lake/_tmp is shared with other stages, so only the files of writers that have exited
    (etl.lake.remove_abandoned) and files untouched for TMP_MAX_AGE go.
    """
    committed = committed_stems(settings)
    removed = []
    for top in ("raw", "quarantine"):
        base = layer_dir(settings, top)
        if base.is_dir():
            removed += [p for p in sorted(base.rglob("*.parquet")) if p.stem not in committed]
    tmp = tmp_dir(settings)
    removed += remove_abandoned(tmp)
    if tmp.is_dir():
        cutoff = time.time() - TMP_MAX_AGE
        removed += [p for p in sorted(tmp.iterdir()) if p.is_file() and p.lstat().st_mtime < cutoff]
    for path in removed:
        path.unlink(missing_ok=True)
        log.warning("removed %s: a leftover of a run that stopped before its manifest row", path)
    return removed


class _Run:
    """State of one ingestion run: known hashes, the next ingest_seq, the DuckDB connection."""

    def __init__(self, settings: Settings, con: duckdb.DuckDBPyConnection, run_id: str, at: datetime) -> None:
        self.settings = settings
        self.con = con
        self.run_id = run_id
        self.at = at
        self.known: dict[str, tuple[str, str, int]] = {}  # sha256 -> (source_file, status, ingest_seq)
        manifest = read_manifest(con, settings)
        rows = con.execute(
            f"select file_hash, source_file, status, ingest_seq from {manifest} order by ingest_seq"
        ).fetchall()
        for sha, source, status, seq in rows:
            self.known.setdefault(sha, (source, status, seq))
        self.known_paths = {source for _sha, source, _status, _seq in rows}
        self.next_seq = max((r[3] for r in rows), default=0) + 1
        self.cache = _load_hash_cache(settings)
        self.seen: dict[str, list] = {}
        self.sources = SourceFinder(settings)  # NEM12, NEM13, Green Button and profiles (docs/sources.md)

    def take(self, entry: LandingEntry) -> FileResult:
        """Ingest, reject or skip one landing entry."""
        found = self.sources.find(entry)
        source = found if isinstance(found, SourceFile) else None
        entry = source.entry if source else entry
        if isinstance(found, str):  # an invalid profile claims the file: it waits, unread
            result = FileResult(entry.source_file, None, SKIPPED, found)
        elif entry.dataset is None:
            result = FileResult(entry.source_file, None, SKIPPED, entry.skip_reason)
        else:
            taken: FileResult | None = None
            try:
                result = taken = self._take(entry, entry.dataset, source)
            finally:
                # A file taken before (a close sees every earlier landing file again) is known by its hash
                # without a read into DuckDB: no temp relations to drop, no statement spent on it.
                if taken is None or source is not None or not taken.seen_before:
                    drop_temp(self.con)
                    SourceFile.cleanup(self.con)
        if not result.seen_before:  # counted in one line by ingest_summary
            log.info(
                "%s %s%s", result.status, result.source_file, f": {result.reason}" if result.reason else ""
            )
        return result

    def _take(self, entry: LandingEntry, dataset: Dataset, source: SourceFile | None = None) -> FileResult:
        # A source file's hash covers its profile, which the hash cache cannot see: always hashed.
        cached = None if source else self._cached_hash(entry)
        if cached is None and entry.source_file in self.known_paths:
            # A path read before whose metadata changed (a hard link, chmod or copy changes the ctime):
            # most often the same bytes, which the hash alone tells, without a full read's gunzip,
            # checks and copy. New bytes are read again in full below.
            try:
                cached = self._read(entry, None, source).sha256
            except OSError as exc:
                return _unreadable(entry, dataset, exc)
        if cached in self.known:
            return self._duplicate(entry, dataset, cached)
        snapshot, problem = _snapshot_date(entry, dataset)
        if entry.size > self.settings.max_file_bytes:
            problem = (
                f"{entry.source_file} is {entry.size} bytes, above the limit of "
                f"{self.settings.max_file_bytes} bytes (METERFLOW_MAX_FILE_MB)"
            )
        tmp = None if problem else new_tmp_path(self.settings, ".csv")
        try:
            try:
                read = self._read(entry, tmp, source)
            except OSError as exc:
                return _unreadable(entry, dataset, exc)
            self.seen[entry.source_file] = [*(entry.stat_key or ()), read.sha256]
            if read.sha256 in self.known:
                return self._duplicate(entry, dataset, read.sha256)
            problem = problem or read.error
            if problem:
                return self._reject(entry, dataset, read.sha256, problem, snapshot)
            return self._load(entry, dataset, read, snapshot, source)
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    def _read(self, entry: LandingEntry, tmp: Path | None, source: SourceFile | None = None) -> FileRead:
        if source is not None:
            return source.read(self.con, tmp, self.settings.max_file_bytes)
        return read_landing_file(entry, tmp, self.settings.max_file_bytes, self.settings.read_chunk_bytes)

    def _load(
        self,
        entry: LandingEntry,
        dataset: Dataset,
        read: FileRead,
        snapshot: date | None,
        source: SourceFile | None = None,
    ) -> FileResult:
        label = entry.source_file
        assert read.text is not None
        try:
            line_map = None if source is None else LINE_MAP
            layout, counts = check_rows(
                self.con, read.text, dataset, label, self.settings.read_chunk_bytes, line_map
            )
        except ContractError as exc:
            return self._reject(entry, dataset, read.sha256, str(exc), snapshot)
        if source is not None:  # the records the reader quarantined itself
            counts = source.adopt(counts)
        if not read.text.unchanged():
            del self.seen[label]
            return _unreadable(entry, dataset, OSError(f"{label} changed while it was read"))
        if counts.rows_in == 0:
            empty = f"{label}: no accepted row: the file has a header but no data row"
            return self._reject(entry, dataset, read.sha256, empty, snapshot)
        seq = self._allocate()
        stem = file_stem(seq, read.sha256)
        if counts.rows_quarantined:
            quarantine_rows(self.con, layout)
            if source is not None:
                source.add_quarantine(self.con)
            self._write_quarantine(dataset, label, read.sha256, seq, stem)
        reason: str | None = None
        if counts.rows_accepted == 0:
            line, why = self.con.execute("select line_no, reason from quarantined limit 1").fetchone()  # type: ignore[misc]
            reason = (
                f"{label}: no accepted row: all {counts.rows_in} rows are quarantined "
                f"(the first, line {line}: {why})"
            )
            status, parts = REJECTED, []
        else:
            status = INGESTED
            parts = self._write_raw(dataset, counts, label, read.sha256, seq, stem, snapshot)
        result = FileResult(
            label,
            dataset.name,
            status,
            reason,
            counts.rows_in,
            counts.rows_accepted,
            counts.rows_quarantined,
            parts,
            read.sha256,
            seq,
        )
        self._write_manifest(result, entry, snapshot)
        return result

    def _reject(
        self, entry: LandingEntry, dataset: Dataset, sha: str, reason: str, snapshot: date | None
    ) -> FileResult:
        """A file rejected whole: a manifest row, nothing else."""
        result = FileResult(
            entry.source_file, dataset.name, REJECTED, reason, file_hash=sha, ingest_seq=self._allocate()
        )
        self._write_manifest(result, entry, snapshot)
        return result

    def _duplicate(self, entry: LandingEntry, dataset: Dataset, sha: str) -> FileResult:
        source, status, seq = self.known[sha]
        self.seen[entry.source_file] = [*(entry.stat_key or ()), sha]
        same = "was" if source == entry.source_file else f"has the same bytes as {source}, which was"
        reason = f"{entry.source_file} {same} {status.lower()} before (ingest_seq {seq}): nothing to do"
        return FileResult(
            entry.source_file,
            dataset.name,
            DUPLICATE,
            reason,
            file_hash=sha,
            seen_before=source == entry.source_file,
        )

    def _allocate(self) -> int:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    def _write_raw(
        self,
        dataset: Dataset,
        counts: RowCounts,
        label: str,
        sha: str,
        seq: int,
        stem: str,
        snapshot: date | None,
    ) -> list[str]:
        """Publish one raw Parquet per partition; returns the partition folder names."""
        lineage: dict[str, object] = {"_source_file": label, "_file_hash": sha, "_run_id": self.run_id}
        lineage |= {"_ingested_at": self.at, "_ingest_seq": seq}
        select, params = _raw_select(dataset, lineage, snapshot)
        if dataset.is_reference:
            targets = [(f"snapshot={snapshot}", "_ok", params)]
        else:
            targets = []
            for value in counts.partitions:
                where, args = partition_filter(dataset, value)
                targets.append((partition_name(value), where, [*params, *args]))
        # Row order inside a raw file means nothing (`_line_no` carries the line): unordered writes run
        # in parallel, about a third faster than ordered ones.
        self.con.execute("set preserve_insertion_order = false")
        try:
            for part, where, args in targets:
                dest = raw_file(self.settings, dataset.name, part, stem)
                copy_to_parquet(self.con, f"{select} where {where}", dest, self.settings, args)
        finally:
            self.con.execute("set preserve_insertion_order = true")
        return [part for part, _, _ in targets]

    def _write_quarantine(self, dataset: Dataset, label: str, sha: str, seq: int, stem: str) -> None:
        values: dict[str, object] = {
            "dataset": dataset.name,
            "source_file": label,
            "file_hash": sha,
            "run_id": self.run_id,
            "ingested_at": self.at,
            "ingest_seq": seq,
        }
        select, params = _select(QUARANTINE_COLUMNS, values, "quarantined")
        dest = quarantine_dir(self.settings, dataset.name) / f"{stem}.parquet"
        copy_to_parquet(self.con, select, dest, self.settings, params)

    def _write_manifest(self, result: FileResult, entry: LandingEntry, snapshot: date | None) -> None:
        """The manifest row, written last: from now on the file counts as read."""
        assert result.file_hash is not None and result.ingest_seq is not None
        values: dict[str, object] = {
            "file_hash": result.file_hash,
            "dataset": result.dataset,
            "source_file": result.source_file,
            "size_bytes": entry.size,
            "status": result.status,
            "reason": result.reason,
            "rows_in": result.rows_in,
            "rows_accepted": result.rows_accepted,
            "rows_quarantined": result.rows_quarantined,
            "partitions": result.partitions,
            "snapshot_date": snapshot,
            "run_id": self.run_id,
            "ingested_at": self.at,
            "ingest_seq": result.ingest_seq,
        }
        select, params = _select(MANIFEST_COLUMNS, values, None)
        dest = manifest_dir(self.settings) / f"{file_stem(result.ingest_seq, result.file_hash)}.parquet"
        copy_to_parquet(self.con, select, dest, self.settings, params)
        self.known[result.file_hash] = (result.source_file, result.status, result.ingest_seq)

    def _cached_hash(self, entry: LandingEntry) -> str | None:
        """The sha256 a previous run computed for these very bytes (same path, size, mtime, inode, ctime)."""
        row = self.cache.get(entry.source_file)
        if entry.stat_key is None or not isinstance(row, list) or row[:4] != list(entry.stat_key):
            return None
        self.seen[entry.source_file] = row
        return row[4] if len(row) == 5 else None

    def save_hashes(self, folders: list[str]) -> None:
        """Keep the hashes of the files seen, for the next run (entries of folders not read stay)."""
        keep = {k: v for k, v in self.cache.items() if k.split("/", 1)[0] not in folders}
        path = self.settings.state / HASH_CACHE
        write_json_atomic(path, keep | self.seen, sort_keys=True)


def _unreadable(entry: LandingEntry, dataset: Dataset, exc: OSError) -> FileResult:
    """A landing file that could not be read as one stable regular file: skipped, tried again next run."""
    reason = f"{entry.source_file} could not be read ({exc}); the next run tries again"
    return FileResult(entry.source_file, dataset.name, SKIPPED, reason)


def _load_hash_cache(settings: Settings) -> dict[str, list]:
    """The hash cache of the previous run; empty when it is missing or unreadable (then files are hashed)."""
    try:
        data = json.loads((settings.state / HASH_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _snapshot_date(entry: LandingEntry, dataset: Dataset) -> tuple[date | None, str | None]:
    """The snapshot date in a reference file name, or why the name has none."""
    if not dataset.is_reference:
        return None, None
    digits = entry.source_file.split("/", 1)[1][len(dataset.name) + 1 :][:8]
    try:
        snapshot = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) if digits.isdigit() else None
    except ValueError:
        snapshot = None
    if snapshot is None or len(digits) < 8 or not 1900 <= snapshot.year <= 2099:
        return None, (
            f"{entry.source_file}: a reference file name must be {dataset.name}_<YYYYMMDD>...csv[.gz] "
            "with a valid snapshot date"
        )
    return snapshot, None


def _select(
    columns: dict[str, str],
    values: dict[str, object],
    table: str | None,
    renamed: dict[str, str] | None = None,
    inline_text: bool = False,
) -> tuple[str, list]:
    """A select of `columns` in order, each cast to its type: a column in `values` is a parameter, one in
    `renamed` comes from that column of `table`, any other from the same name in `table`.

    inline_text writes text values as one-value ENUM literals: DuckDB's Parquet writer hashes every
    value of a VARCHAR column into its dictionary, while an ENUM comes with its dictionary, and both are
    the same Parquet String column. On millions of rows this is most of the cost of the lineage columns.
    """
    exprs, params = [], []
    for name, type_ in columns.items():
        value = values.get(name)
        if name in values and inline_text and type_ == "VARCHAR" and isinstance(value, str):
            exprs.append(f"{lit(value)}::ENUM({lit(value)}) as {q(name)}")
        elif name in values:
            exprs.append(f"?::{type_} as {q(name)}")
            params.append(value)
        else:
            exprs.append(f"{q((renamed or {}).get(name, name))}::{type_} as {q(name)}")
    return f"select {', '.join(exprs)}" + (f" from {table}" if table else ""), params


def _raw_select(dataset: Dataset, lineage: dict[str, object], snapshot: date | None) -> tuple[str, list]:
    """The select of raw rows from `staged`: contract columns, lineage, then the snapshot date."""
    columns = {c.name: c.lake_type for c in dataset.columns} | dataset.instant_column | LINEAGE_COLUMNS
    values = dict(lineage)
    if dataset.is_reference:
        columns |= SNAPSHOT_COLUMN
        values["_snapshot_date"] = snapshot
    return _select(columns, values, "staged", inline_text=True)
