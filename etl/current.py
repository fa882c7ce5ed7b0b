"""The current reference tables, kept between runs.

`int_customers__current`, `int_network__current` and `int_meters__current` keep, per key, the row of the
newest snapshot that lists it, so they read every raw snapshot of their dataset: work that grows with
history, done in VEE, in the checks and in the aggregates of every run. Each is saved with `_sources.json`,
the raw snapshot files it came from and a hash of the SQL that built it, by the stage that owns it, in its
own layer: the meters by VEE in `lake/validated/meters_current/`, the customers and the network by the
aggregates in `lake/aggregates/_current/<dataset>/`. A run whose snapshot files and SQL are the same reads
the saved copy; any other builds the table from the raw snapshots, and the owner saves it again, the data
first and the list last, so a stale copy is never taken for a current one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import duckdb

from etl.lake import aggregates_dir, copy_to_parquet, raw_dir, raw_files, validated_dir, write_json_atomic
from etl.models import build, plan, register_raw
from etl.settings import Settings

log = logging.getLogger(__name__)

# model -> the raw reference dataset it reads, and the stage that keeps it
SAVED_MODELS: dict[str, tuple[str, str]] = {
    "int_customers__current": ("customers", "aggregates"),
    "int_network__current": ("network", "aggregates"),
    "int_meters__current": ("meters", "vee"),
}


def _dir(settings: Settings, model: str) -> Path:
    dataset, owner = SAVED_MODELS[model]
    if owner == "vee":
        return validated_dir(settings, f"{dataset}_current")
    return aggregates_dir(settings, "_current") / dataset


def _sources(settings: Settings, model: str) -> dict[str, Any]:
    """What the saved copy must have been built from: the raw snapshot files and the models' SQL."""
    dataset = SAVED_MODELS[model][0]
    sql = "\n".join(step.sql for step in plan([model]))
    files = [f.relative_to(raw_dir(settings, dataset)).as_posix() for f in raw_files(settings, dataset)]
    return {"sql_sha256": hashlib.sha256(sql.encode("utf-8")).hexdigest(), "files": files}


def load(con: duckdb.DuckDBPyConnection, settings: Settings, model: str, stage: str | None = None) -> bool:
    """Create table `model` in `con`, from its saved copy when that is current; True when it was.

    Otherwise the table is built from `raw_<dataset>` (registered here) and, when the calling `stage`
    ('vee' or 'aggregates') is the one that keeps it, saved for the next run; the checks (no stage) never
    save. Raises KeyError for a model that is not kept between runs.
    """
    dataset, owner = SAVED_MODELS[model]
    folder = _dir(settings, model)
    saved, listed = folder / "data.parquet", folder / "_sources.json"
    sources = _sources(settings, model)
    if saved.exists() and listed.exists() and json.loads(listed.read_text(encoding="utf-8")) == sources:
        con.execute(f"create or replace table {model} as select * from read_parquet('{saved.as_posix()}')")
        return True
    register_raw(con, settings, dataset)
    build(con, [model])
    if stage == owner:
        copy_to_parquet(con, f"select * from {model}", saved, settings)
        write_json_atomic(listed, sources, settings)
        log.info("saved %s, built from %d snapshot files", model, len(sources["files"]))
    return False
