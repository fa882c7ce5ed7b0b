"""The hostile landing corpus (tests/hostile/cases.py) through `meterflow run`, in one data home beside a
generated company: every entry gets its status, message and quarantine rows, nothing is read or written
outside the data home, rows in = accepted + quarantined for every file, and the run still publishes
the company's figures unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.lake import committed_stems, manifest_files
from etl.settings import Settings
from etl.vee import run as vee
from tests.hostile.cases import (
    CASES,
    MAX_FILE_MB,
    OUTSIDE_MARKER,
    UNKNOWN_CUSTOMER_KWH,
    UNKNOWN_CUSTOMER_VND,
    Case,
    write_corpus,
)
from tests.lakefixtures import write_raw_file

MONTH = "2025-01"
METERFLOW = Path(sys.executable).parent / "meterflow"


@dataclass(frozen=True)
class CorpusRun:
    """A data home after `meterflow run` over the generated company and the corpus."""

    settings: Settings
    root: Path  # the test's temporary folder: home, outside, cwd
    outside: Path
    cwd: Path
    returncode: int
    stdout: str
    stderr: str


def meterflow(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `meterflow` command on `home` with the corpus's file size limit and a wide console."""
    env = dict(os.environ)
    env.pop("METERFLOW_TEMP_DIR", None)
    env |= {
        "METERFLOW_HOME": str(home),
        "METERFLOW_MAX_FILE_MB": str(MAX_FILE_MB),
        "METERFLOW_THREADS": "2",
        "METERFLOW_MEMORY_LIMIT": "2GB",
        "COLUMNS": "2000",  # rich wraps at the console width; one message per line is easier to find
    }
    return subprocess.run(
        [str(METERFLOW), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    from etl.generate import generate

    root = tmp_path_factory.mktemp("hostile")
    home, outside, cwd = root / "home", root / "outside", root / "cwd"
    cwd.mkdir()
    generate(home, customers=20, start=MONTH, end=MONTH, seed=11, fault_rate=0)
    write_corpus(home / "landing", outside)
    done = meterflow(home, cwd, "run")
    settings = Settings(home=home, threads=2, memory_limit="2GB", max_file_bytes=MAX_FILE_MB * 1024 * 1024)
    return CorpusRun(settings, root, outside, cwd, done.returncode, done.stdout, done.stderr)


def query(sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def manifest(run: CorpusRun) -> dict[str, dict]:
    """Manifest rows by landing name."""
    files = [str(p) for p in manifest_files(run.settings)]
    con = duckdb.connect()
    try:
        cur = con.execute("select * from read_parquet(?)", [files])
        names = [d[0] for d in cur.description]
        return {r[2]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        con.close()


def ingest_results(run: CorpusRun) -> dict[str, str]:
    """The run's per-entry accounting from mart_data_quality: landing name -> 'STATUS: reason'."""
    con = duckdb.connect(str(run.settings.marts_path), read_only=True)
    try:
        rows = con.execute(
            "select check_name, description from mart_data_quality where stage = 'ingest'"
        ).fetchall()
    finally:
        con.close()
    return {name.removeprefix("file_accepted(").removesuffix(")"): text for name, text in rows}


def raw_rows_by_file(run: CorpusRun) -> dict[str, int]:
    """Raw rows per file hash, over every dataset."""
    files = sorted(str(p) for p in (run.settings.lake / "raw").rglob("*.parquet"))
    rows = query(
        "select _file_hash, count(*) from read_parquet(?, union_by_name = true) group by all", [files]
    )
    return dict(rows)  # type: ignore[arg-type]


def quarantine_rules(run: CorpusRun) -> dict[str, list[str]]:
    """Quarantine rules per landing name, in line order."""
    files = sorted(str(p) for p in (run.settings.lake / "quarantine").rglob("*.parquet"))
    out: dict[str, list[str]] = {}
    for source, rule in query(
        "select source_file, rule from read_parquet(?) order by ingest_seq, line_no", [files]
    ):
        out.setdefault(source, []).append(rule)
    return out


def flat(text: str) -> str:
    return " ".join(text.split())


def test_meterflow_run_publishes_despite_the_corpus(corpus_run: CorpusRun) -> None:
    assert corpus_run.returncode == 0, corpus_run.stderr[-3000:]
    assert f"published {corpus_run.settings.marts_path}" in flat(corpus_run.stdout)
    assert "Traceback" not in corpus_run.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name.encode("unicode_escape").decode() for c in CASES])
def test_each_entry_gets_its_status_message_and_quarantine_rows(corpus_run: CorpusRun, case: Case) -> None:
    results = ingest_results(corpus_run)
    rows = manifest(corpus_run)
    if case.status == "DUPLICATE":
        original = rows[case.copy_of]
        copy = (corpus_run.settings.landing / case.name).read_bytes()
        assert original["file_hash"] == hashlib.sha256(copy).hexdigest()
        assert case.name not in rows and case.name not in results
        return
    status, _, reason = results[case.name].partition(": ")
    assert status == case.status
    if case.reason:
        assert case.reason in reason
    if status in ("REJECTED", "SKIPPED"):  # and the person running it is told why
        assert flat(f"{status.lower()}: {reason}") in flat(corpus_run.stdout)
    if status == "SKIPPED":
        assert case.name not in rows
        return
    row = rows[case.name]
    assert (row["status"], row["rows_in"], row["rows_accepted"], row["rows_quarantined"]) == (
        case.status,
        *case.rows,
    )
    assert quarantine_rules(corpus_run).get(case.name, []) == list(case.rules)
    assert raw_rows_by_file(corpus_run).get(row["file_hash"], 0) == case.rows[1]
    if status == "REJECTED":
        assert not row["partitions"]


def test_rows_in_equal_accepted_plus_quarantined_for_every_file_and_overall(corpus_run: CorpusRun) -> None:
    rows = list(manifest(corpus_run).values())
    assert all(r["rows_in"] == r["rows_accepted"] + r["rows_quarantined"] for r in rows)
    by_file = raw_rows_by_file(corpus_run)
    assert all(by_file.get(r["file_hash"], 0) == r["rows_accepted"] for r in rows)
    quarantined = sum(len(v) for v in quarantine_rules(corpus_run).values())
    assert sum(r["rows_quarantined"] for r in rows) == quarantined == 31
    assert sum(r["rows_accepted"] for r in rows) == sum(by_file.values())
    assert sum(r["rows_in"] for r in rows) == sum(by_file.values()) + quarantined
    drops = json.loads((corpus_run.settings.home / "truth" / "drops.json").read_text(encoding="utf-8"))
    read = {c.name for c in CASES if c.status in ("INGESTED", "REJECTED")}
    assert set(manifest(corpus_run)) == {f for files in drops.values() for f in files} | read


def test_nothing_half_written_nothing_read_or_written_outside_the_data_home(corpus_run: CorpusRun) -> None:
    lake = corpus_run.settings.lake
    committed = committed_stems(corpus_run.settings)
    parquet = [*(lake / "raw").rglob("*.parquet"), *(lake / "quarantine").rglob("*.parquet")]
    assert parquet and all(p.stem in committed for p in parquet)
    assert list((lake / "_tmp").iterdir()) == []
    # the links' target: never read
    raw = sorted(str(p) for p in (lake / "raw" / "interval_reads").rglob("*.parquet"))
    assert query(
        "select count(*) from read_parquet(?, union_by_name = true) "
        "where meter_id = ? or _source_file like ?",
        [raw, OUTSIDE_MARKER, "%/%/%"],
    ) == [(0,)]
    assert sorted(p.name for p in corpus_run.outside.iterdir()) == [f"interval_reads_{OUTSIDE_MARKER}.csv"]
    # no shell ran a name; nothing appeared beside the data home or in the working directory
    assert list(corpus_run.cwd.iterdir()) == []
    assert sorted(p.name for p in corpus_run.root.iterdir()) == ["cwd", "home", "outside"]
    assert not list(corpus_run.root.rglob("PWNED*")) and not (Path.cwd() / "PWNED").exists()
    assert sorted(p.name for p in corpus_run.settings.home.iterdir()) == [
        "docs", "lake", "landing", "state", "tmp", "truth", "warehouse",
    ]  # fmt: skip


def test_the_links_folder_and_fifo_are_still_there_untouched(corpus_run: CorpusRun) -> None:
    readings = corpus_run.settings.landing / "readings"
    assert (readings / "interval_reads_hx_link_outside.csv").is_symlink()
    assert (readings / "interval_reads_hx_subfolder" / "interval_reads_20250115.csv").is_file()
    assert (readings / "interval_reads_hx_fifo.csv").is_fifo()


def test_hostile_text_is_kept_as_data(corpus_run: CorpusRun) -> None:
    lake = corpus_run.settings.lake / "raw"
    interval = sorted(str(p) for p in (lake / "interval_reads").rglob("*.parquet"))
    register = sorted(str(p) for p in (lake / "register_reads").rglob("*.parquet"))
    assert query(
        "select _extra from read_parquet(?, union_by_name = true) where meter_id = 'HX-17'", [interval]
    ) == [("""{"x'); drop table raw; --":"1","a\\"}{b":"2"}""",)]
    assert query(
        "select meter_id from read_parquet(?, union_by_name = true) where _source_file like '%nul_byte%'",
        [interval],
    ) == [("HX-\x008",)]
    # a quoted field's line breaks stay in the record; the record starts on its first physical line
    assert query(
        "select _line_no, _extra from read_parquet(?, union_by_name = true) where meter_id = 'HX-R1' "
        "order by _line_no",
        [register],
    ) == [(2, '{"note":"first\\nsecond\\nthird"}'), (5, '{"note":"plain"}')]
    # ISO 8601's 24:00 is the end of the day; 1900 and the last minute of 2099 (local) are in range
    assert query(
        "select interval_start from read_parquet(?, union_by_name = true) where meter_id = 'HX-22' "
        "order by interval_start",
        [interval],
    ) == [(datetime(1900, 1, 1),), (datetime(2025, 1, 16),), (datetime(2099, 12, 31, 23, 59),)]


def test_vee_takes_unknown_meters_as_unassigned_and_rejects_their_register_reads(
    corpus_run: CorpusRun,
) -> None:
    validated = corpus_run.settings.lake / "validated"
    intervals = sorted(str(p) for p in (validated / "interval_rejects").rglob("*.parquet"))
    registers = sorted(str(p) for p in (validated / "register_rejects").rglob("*.parquet"))
    # CONTRACT.md §4 v2: an interval meter no snapshot lists is validated as UNASSIGNED, not rejected
    assert query("select rule, count(*) from read_parquet(?) group by all", [intervals]) == []
    lake = corpus_run.settings.lake / "raw"
    raw = [str(p) for p in (lake / "interval_reads").rglob("*.parquet")]
    listed = [str(p) for p in (lake / "meters").rglob("*.parquet")]
    hostile = query(
        "select distinct meter_id from read_parquet(?, union_by_name = true) "
        "where meter_id not in (select meter_id from read_parquet(?, union_by_name = true))",
        [raw, listed],
    )
    reads = sorted(str(p) for p in (validated / "interval_reads").rglob("*.parquet"))
    unassigned = query("select distinct meter_id from read_parquet(?) where role = 'UNASSIGNED'", [reads])
    assert hostile and sorted(hostile) == sorted(unassigned)
    assert query("select rule, count(*) from read_parquet(?) group by all", [registers]) == [
        ("UNKNOWN_METER", 4)
    ]
    # the stray 1900 and 2099 readings add their own months, not the 2,400 months between them
    months = sorted(p.name for p in (validated / "meter_monthly").iterdir())
    assert months == ["period=1900-01", "period=2025-01", "period=2099-12"]


def test_the_company_figures_are_the_truth_plus_the_unknown_customer(corpus_run: CorpusRun) -> None:
    truth_files = [
        str(corpus_run.settings.home / "truth" / name)
        for name in ("kpis_company.parquet", "kpis_region.parquet")
    ]
    truth = {
        r[0]: r[1:]
        for r in query(
            "select region_code, kwh_sold, revenue_vnd, kwh_received from read_parquet(?) where period = ?",
            [truth_files, MONTH],
        )
    }
    con = duckdb.connect(str(corpus_run.settings.marts_path), read_only=True)
    marts = {
        r[0]: r[1:]
        for r in con.execute(
            "select region_code, kwh_sold, revenue_vnd, kwh_received from mart_kpi_monthly where period = ?",
            [MONTH],
        ).fetchall()
    }
    con.close()
    kwh, vnd = Decimal(UNKNOWN_CUSTOMER_KWH), Decimal(UNKNOWN_CUSTOMER_VND)
    assert set(marts) == set(truth) | {"UNKNOWN"}
    assert marts["UNKNOWN"] == (kwh, vnd, None)
    assert marts["ALL"] == (truth["ALL"][0] + kwh, truth["ALL"][1] + vnd, truth["ALL"][2])
    assert {k: v for k, v in marts.items() if k not in ("ALL", "UNKNOWN")} == {
        k: v for k, v in truth.items() if k != "ALL"
    }


def test_a_snapshot_with_no_accepted_row_replaces_nothing(corpus_run: CorpusRun) -> None:
    network = corpus_run.settings.lake / "raw" / "network"
    assert sorted(p.name for p in network.iterdir()) == [f"snapshot={MONTH}-01"]


def test_a_second_run_over_the_same_corpus_changes_nothing(corpus_run: CorpusRun) -> None:
    before = sorted(p.name for p in manifest_files(corpus_run.settings))
    mtime = corpus_run.settings.marts_path.stat().st_mtime_ns
    done = meterflow(corpus_run.settings.home, corpus_run.cwd, "run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "nothing new: the published marts" in flat(done.stdout)
    assert sorted(p.name for p in manifest_files(corpus_run.settings)) == before
    assert corpus_run.settings.marts_path.stat().st_mtime_ns == mtime


def test_a_stray_timestamp_adds_its_month_not_every_month_up_to_it(tmp_path: Path) -> None:
    """Found with the corpus: VEE's full rebuild took every month from the earliest raw partition to the
    latest, so one reading of an unknown meter in 1900 and one in 2099 meant 2,400 months to rebuild."""
    settings = Settings(home=tmp_path, threads=2, memory_limit="1GB")
    meter = {
        "meter_id": "M1",
        "role": "DT",
        "node_id": "DT1",
        "reading_mode": "INTERVAL",
        "multiplier": "1",
        "register_digits": 6,
        "installed_on": "2025-01-01",
    }
    write_raw_file(settings, "meters", [meter], seq=1, snapshot_date=date(2025, 1, 1))

    def reading(meter_id: str, at: str) -> dict:
        return {"meter_id": meter_id, "interval_start": at, "interval_minutes": 60, "kwh": "1"}

    rows = [
        reading("M1", "2025-01-31 22:00"),
        reading("M1", "2025-03-01 01:00"),  # February is all gap: M1 expects its intervals there too
        reading("M1", "1990-06-01 00:00"),  # before the installation: rejected, spans nothing
        reading("X9", "1900-01-01 00:00"),  # unknown meter
        reading("X9", "2099-12-31 23:00"),
    ]
    write_raw_file(settings, "interval_reads", rows, seq=2)
    report = vee.run_vee(settings, "stray")
    assert report.periods_rebuilt == ["1900-01", "1990-06", "2025-01", "2025-02", "2025-03", "2099-12"]
    feb = settings.lake / "validated" / "meter_monthly" / "period=2025-02" / "data.parquet"
    # a month without a file still has M1's expected intervals: one like-day fill, the rest missing
    assert query(
        f"select meter_id, expected_intervals, estimated_intervals, missing_intervals from '{feb}'"
    ) == [("M1", 672, 1, 671)]
