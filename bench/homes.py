"""Data homes for the benchmark: the cache of generated companies and cheap copies of a stage's output.

A company generated once is kept under `bench/cache/<size>/home/` with a `meta.json` that records the
generator's fingerprint and parameters; it is reused only when they all match. Each measured run starts
from a clone of the previous stage's home in which the files meterflow never rewrites (landing files and
lake Parquet, which are only ever renamed into place or deleted) are hard links, and everything else
(watermarks, DuckDB files, state) is copied, so a run cannot change the home it was cloned from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.measure import REPO, BenchError
from etl.lake import write_json_atomic

GENERATOR_SOURCES = ("etl/generate.py", "etl/synth")
SKIPPED_TOP_LEVEL = frozenset({"tmp", "truth"})
META = "meta.json"


def generator_fingerprint() -> dict[str, str | None]:
    """The generator's declared version (if it has one) and a hash of its source files."""
    digest = hashlib.sha256()
    for name in GENERATOR_SOURCES:
        path = REPO / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
        for file in files:
            digest.update(file.relative_to(REPO).as_posix().encode())
            digest.update(file.read_bytes())
    version = None
    try:
        from etl import generate

        version = getattr(generate, "GENERATOR_VERSION", None) or getattr(generate, "__version__", None)
    except ImportError:
        version = None
    return {"version": None if version is None else str(version), "source_sha256": digest.hexdigest()}


def company_params(customers: int, start: str, end: str, seed: int, fault_rate: float) -> dict[str, Any]:
    """What makes two generated companies the same: the generator and its arguments."""
    return {
        "generator": generator_fingerprint(),
        "customers": customers,
        "start": start,
        "end": end,
        "seed": seed,
        "fault_rate": fault_rate,
    }


def read_meta(size_dir: Path) -> dict[str, Any] | None:
    path = size_dir / META
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def cached_home(size_dir: Path, params: dict[str, Any]) -> Path | None:
    """The cached company's home when its meta matches `params` and its landing exists, else None."""
    meta = read_meta(size_dir)
    home = size_dir / "home"
    if meta is None or meta.get("params") != params or not (home / "landing").is_dir():
        return None
    return home


def write_meta(size_dir: Path, params: dict[str, Any], generate: dict[str, Any]) -> None:
    """Record what the cached company is and how long generating it took (written last: marks it whole)."""
    write_json_atomic(size_dir / META, {"params": params, "generate": generate}, indent=2)


def forget(size_dir: Path) -> None:
    """Drop a cached company (its meta first, so a half-deleted cache is never taken as whole)."""
    (size_dir / META).unlink(missing_ok=True)
    shutil.rmtree(size_dir / "home", ignore_errors=True)


def _immutable(rel: Path) -> bool:
    """Files meterflow never rewrites in place: landing files, and lake Parquet (renamed into place)."""
    return rel.parts[0] == "landing" or (rel.parts[0] == "lake" and rel.suffix == ".parquet")


def _link_or_copy(src: Path, dest: Path, link: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dest)
            return
        except OSError:  # another file system, or links not allowed: a copy is slower but equivalent
            pass
    shutil.copy2(src, dest)


def clone_home(
    src: Path, dest: Path, landing_files: Iterable[str] | None = None, landing: bool = True
) -> Path:
    """Make `dest` a copy of the data home `src` that runs cannot write through.

    `landing_files` (paths relative to landing/) limits the landing files taken; the others are left
    out; `landing=False` takes none. The spill folder and the generator's truth are not part of a home
    and are skipped. Raises BenchError when `dest` exists.
    """
    if dest.exists():
        raise BenchError(f"cannot clone a data home into {dest}: it exists")
    dest.mkdir(parents=True)
    _copy_tree(src, dest, landing_files, landing)
    return dest


def clone_state(src: Path, dest: Path) -> Path:
    """Copy everything of the data home `src` but its landing files into the existing home `dest`.

    Hard-linking a landing file changes its ctime, which meterflow's hash cache keys on: a home whose
    landing files are linked after a run has read them would have every file hashed again by the next run,
    work a close in place never does. So a close's homes get their landing links before the history is
    built, and the history's lake and state afterwards, through this function.
    """
    _copy_tree(src, dest, None, landing=False)
    return dest


def _copy_tree(src: Path, dest: Path, landing_files: Iterable[str] | None, landing: bool) -> None:
    wanted = None if landing_files is None else {Path("landing") / f for f in landing_files}
    for root, dirs, files in os.walk(src):
        rel_root = Path(root).relative_to(src)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in SKIPPED_TOP_LEVEL and (landing or d != "landing")]
        dirs.sort()
        (dest / rel_root).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            rel = rel_root / name
            if wanted is not None and rel.parts[0] == "landing" and rel not in wanted:
                continue
            _link_or_copy(Path(root) / name, dest / rel, link=_immutable(rel))
    if wanted is not None and landing:
        missing = sorted(str(p) for p in wanted if not (dest / p).exists())
        if missing:
            raise BenchError(f"landing files not found in {src}: {', '.join(missing[:5])}")


def add_landing_files(src_home: Path, dest_home: Path, landing_files: Iterable[str]) -> None:
    """Drop landing files of `src_home` into `dest_home` (hard links), as upstream would drop them."""
    for rel in landing_files:
        _link_or_copy(src_home / "landing" / rel, dest_home / "landing" / rel, link=True)


def landing_files(home: Path) -> list[str]:
    """Every landing file of a home, relative to landing/, sorted."""
    base = home / "landing"
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


_MONTH_IN_NAME = re.compile(r"_(\d{4})(\d{2})\d{2}")


def month_drops(home: Path) -> dict[str, list[str]]:
    """Landing files grouped by the month close they belong to, months in order.

    The generator's `truth/drops.json` says; without it, a file goes to the month of the first
    `_YYYYMMDD` in its name (files without one go to the first month).
    """
    drops_path = home / "truth" / "drops.json"
    if drops_path.exists():
        drops = json.loads(drops_path.read_text(encoding="utf-8"))
        return {month: list(drops[month]) for month in sorted(drops)}
    grouped: dict[str, list[str]] = {}
    undated = []
    for rel in landing_files(home):
        match = _MONTH_IN_NAME.search(Path(rel).name)
        if match:
            grouped.setdefault(f"{match.group(1)}-{match.group(2)}", []).append(rel)
        else:
            undated.append(rel)
    months = sorted(grouped)
    if months:
        grouped[months[0]] = undated + grouped[months[0]]
    return {month: grouped[month] for month in months}


def files_until(drops: dict[str, list[str]], months: int) -> list[str]:
    """The landing files of the first `months` month closes."""
    return [f for month in list(drops)[:months] for f in drops[month]]
