from __future__ import annotations

import json
from pathlib import Path

from etl.lake import (
    layer_watermark,
    manifest_raw_files,
    partition_file,
    partition_files,
    partition_periods,
    periods_under,
    raw_file,
    tmp_dir,
    validated_dir,
    write_atomic,
    write_json_atomic,
)
from etl.settings import Settings


def test_write_atomic_replaces_the_file_and_leaves_no_scratch(tmp_path: Path) -> None:
    target = tmp_path / "out" / "page.html"
    write_atomic(target, "đồng")
    write_atomic(target, "kWh – mới")
    assert target.read_bytes() == "kWh – mới".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["page.html"]


def test_write_atomic_takes_bytes(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    write_atomic(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"


def test_write_json_atomic_keeps_the_options_of_json_dumps(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    doc = {"b": 1, "a": [1, 2]}
    write_json_atomic(target, doc, sort_keys=True)
    assert target.read_text(encoding="utf-8") == json.dumps(doc, sort_keys=True)
    write_json_atomic(target, doc, indent=2)
    assert target.read_text(encoding="utf-8") == json.dumps(doc, indent=2)
    write_json_atomic(target, {"p": tmp_path}, default=str)
    assert json.loads(target.read_text(encoding="utf-8")) == {"p": str(tmp_path)}


def test_a_lake_file_goes_through_the_lake_scratch_folder(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path)
    target = settings.lake / "validated" / "_watermark.json"
    write_json_atomic(target, {"ingest_seq": 3}, settings, indent=2)
    assert json.loads(target.read_text(encoding="utf-8")) == {"ingest_seq": 3}
    assert list(tmp_dir(settings).iterdir()) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["_watermark.json"]


def test_partition_helpers_spell_the_lake_layout(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path)
    base = validated_dir(settings, "meter_monthly")
    assert base == tmp_path / "lake" / "validated" / "meter_monthly"
    assert partition_file(base, "2024-12") == base / "period=2024-12" / "data.parquet"
    assert layer_watermark(settings, "aggregates") == tmp_path / "lake" / "aggregates" / "_watermark.json"
    assert partition_periods(["period=2024-12", "snapshot=2024-12-01", "period=2025-01"]) == {
        "2024-12",
        "2025-01",
    }
    assert periods_under(base) == set()
    for period in ("2025-01", "2024-12"):
        partition_file(base, period).parent.mkdir(parents=True)
        partition_file(base, period).write_bytes(b"")
    (base / "_sources.json").write_text("[]", encoding="utf-8")
    assert periods_under(base) == {"2024-12", "2025-01"}
    assert partition_files(base) == [partition_file(base, "2024-12"), partition_file(base, "2025-01")]


def test_manifest_raw_files_keeps_the_existing_files_of_each_row_in_order(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path)
    rows = [
        ("payments", ["period=2025-01", "period=2024-12"], 7, "ab"),
        ("meters", None, 8, "cd"),
        ("payments", ["period=2025-02"], 9, "ef"),
    ]
    written = [
        raw_file(settings, "payments", "period=2025-01", "000000007_ab"),
        raw_file(settings, "payments", "period=2024-12", "000000007_ab"),
    ]
    for path in written:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    assert written[0] == tmp_path / "lake" / "raw" / "payments" / "period=2025-01" / "000000007_ab.parquet"
    assert manifest_raw_files(settings, rows) == {"payments": written}
