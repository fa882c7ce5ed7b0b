"""Idempotency: running again, dropping the same files again under other names (and the same rows in
other bytes), and replaying the DAG tasks for an earlier logical date give the same marts, every table
but mart_data_quality compared row by row."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from etl.marts import aggregates as marts
from etl.pipeline import run, stage_ingest, stage_marts, stage_publish, stage_vee
from etl.settings import Settings
from etl.vee import run as vee
from tests.conftest import published_tables

# An Airflow run id of the marts DAG for a logical date before the data's last month (a backfill).
BACKFILL_RUN_ID = "meterflow_marts__backfill__2024-12-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def home(tiny_company: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The tiny company's landing files in a home of this module, run once."""
    settings = Settings(home=tmp_path_factory.mktemp("idempotency"), threads=2, memory_limit="2GB")
    for path in sorted(tiny_company.landing.rglob("*")):
        if path.is_file():
            dest = settings.landing / path.relative_to(tiny_company.landing)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(path.read_bytes())
    assert run(settings, run_id="first").published == settings.marts_path
    return settings


def test_a_home_with_the_same_files_publishes_the_same_marts(home: Settings, tiny_company: Settings) -> None:
    assert published_tables(home.marts_path) == published_tables(tiny_company.marts_path)


def test_running_twice_changes_nothing_and_a_forced_publish_the_same_rows(home: Settings) -> None:
    before = published_tables(home.marts_path)
    mtime = home.marts_path.stat().st_mtime_ns
    again = run(home, run_id="second")
    assert again.up_to_date and not again.ingest.changed
    assert again.vee.periods_rebuilt == [] and again.marts.periods_rebuilt == []
    assert home.marts_path.stat().st_mtime_ns == mtime
    assert stage_publish(home, "forced", force=True) == home.marts_path
    assert home.marts_path.stat().st_mtime_ns != mtime
    assert published_tables(home.marts_path) == before


PERIODIC = ("interval_reads", "register_reads", "bill_lines", "payments")


def resent_name(rel: str, marker: str, gzipped: bool) -> str:
    """Another name for a landing file that keeps the file order of the originals: `<dataset>_<rest>`
    becomes `<dataset>_zz_<marker>_<rest>`, a reference file `<dataset>_<date>_<marker><rest>` (its
    snapshot date stays); the suffix says whether the bytes are gzip."""
    folder, name = rel.split("/", 1)
    stem = name.removesuffix(".gz").removesuffix(".csv")
    prefix = next((p for p in PERIODIC if stem.startswith(p + "_")), None)
    if prefix is not None:
        stem = f"{prefix}_zz_{marker}_{stem[len(prefix) + 1 :]}"
    else:
        dataset, _, rest = stem.partition("_")
        stem = f"{dataset}_{rest[:8]}_{marker}{rest[8:]}"
    return f"{folder}/{stem}.csv" + (".gz" if gzipped else "")


def landing_files(settings: Settings) -> list[Path]:
    """The landing files first dropped (not the copies the tests add)."""
    return sorted(
        p
        for p in settings.landing.rglob("*")
        if p.is_file() and not any(m in p.name for m in ("copy", "resent"))
    )


def test_the_same_files_under_other_names_change_nothing(home: Settings) -> None:
    before = published_tables(home.marts_path)
    mtime = home.marts_path.stat().st_mtime_ns
    originals = landing_files(home)
    for path in originals:
        rel = str(path.relative_to(home.landing))
        (home.landing / resent_name(rel, "copy", rel.endswith(".gz"))).write_bytes(path.read_bytes())
    again = run(home, run_id="copies")
    statuses = {f.source_file: f.status for f in again.ingest.files}
    copies = [s for f, s in statuses.items() if "_copy" in f]
    assert copies == ["DUPLICATE"] * len(originals)
    assert again.up_to_date and home.marts_path.stat().st_mtime_ns == mtime
    assert published_tables(home.marts_path) == before


def test_the_same_rows_in_other_bytes_change_no_figure(home: Settings) -> None:
    """Every file sent again, gzipped if it was plain and plain if it was gzip: new bytes, so every row
    is ingested a second time; repeated keys keep one row, and no figure moves."""
    before = published_tables(home.marts_path)
    originals = landing_files(home)
    for path in originals:
        rel = str(path.relative_to(home.landing))
        data = path.read_bytes()
        try:
            data = gzip.decompress(data) if rel.endswith(".gz") else gzip.compress(data, mtime=0)
        except (OSError, EOFError):  # the planted truncated gzip file: sent again as it is
            pass
        (home.landing / resent_name(rel, "resent", not rel.endswith(".gz"))).write_bytes(data)
    again = run(home, run_id="resent")
    resent = [f for f in again.ingest.files if "resent" in f.source_file]
    assert len(resent) == len(originals)
    assert sum(f.rows_accepted for f in resent) > 30_000
    assert again.published == home.marts_path
    assert published_tables(home.marts_path) == before


def test_replaying_the_dag_tasks_for_an_earlier_date_gives_the_same_marts(home: Settings) -> None:
    before = published_tables(home.marts_path)
    # the tasks as a backfill runs them: each works from the watermarks, so there is nothing to redo
    assert stage_ingest(home, BACKFILL_RUN_ID).changed is False
    assert stage_vee(home, BACKFILL_RUN_ID).periods_rebuilt == []
    assert stage_marts(home, BACKFILL_RUN_ID).periods_rebuilt == []
    assert stage_publish(home, BACKFILL_RUN_ID) is None
    # and every month rebuilt from the lake under the backfill's run id: the same rows again
    assert len(vee.run_vee(home, BACKFILL_RUN_ID, full=True).periods_rebuilt) >= 4
    assert len(marts.build(home, BACKFILL_RUN_ID, full=True).periods_rebuilt) >= 4
    assert stage_publish(home, BACKFILL_RUN_ID, force=True) == home.marts_path
    assert published_tables(home.marts_path) == before
