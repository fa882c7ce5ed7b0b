"""The soak: 24 consecutive month closes of a generated company with faults, each one a `meterflow run`,
each month's KPIs checked against the generator's ground truth. Not part of `make test`.

    python -m bench.soak                              # 2,000 customers, 2024-01..2025-12, seed 7
    python -m bench.soak --customers 20000 --work /srv/soak

It generates the company into <work>/source (landing files and truth/), then, close by close in the
order of truth/drops.json, copies that close's files into <work>/home/landing and runs `meterflow run`
in a fresh process. After each run it checks:

- every file of the close: status, rows in and rows quarantined as the generator's summary.json says;
- rows: rows in (manifest) = rows found in the raw layer + rows found in quarantine, so rows lost = 0;
- the company's KPIs of the month the close made final, two closes back (a month's re-sent readings
  come with the next close, and an export re-issued a close later may correct lines of the month before
  its own): every mart_kpi_monthly column the truth has, exact for decimals and to 1e-9 relative for
  ratios; after the last close, every month again, company and regions (region rows are restated when a
  customer moves, so they meet the final truth only once the last snapshot is in);
- no temporary file left (lake/_tmp, warehouse/.building, tmp/quality).

It prints one line per close and the totals, writes bench/results/soak_<time>.json, and exits 1 when a
run failed, a row was lost, a figure was wrong or a file was left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from etl.generate import generate
from etl.lake import layer_dir, manifest_files, tmp_dir
from etl.settings import Settings
from etl.synth.compare import same

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
KEYS = ("period", "region_code")


@dataclass
class Close:
    """What one month close did and what its checks found."""

    close: str
    exit_code: int
    seconds: float
    files: int
    file_checks: int = 0
    file_mismatches: list[str] = field(default_factory=list)
    rows_in: int = 0
    accepted: int = 0
    quarantined: int = 0
    rows_lost: int = 0
    figures_checked: int = 0
    figures_wrong: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


def say(message: str) -> None:
    sys.stderr.write(f"[soak {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def meterflow_run(home: Path, log: Path) -> tuple[int, float]:
    """`meterflow run` on `home` in a fresh process; its output goes to `log`."""
    env = dict(os.environ) | {"METERFLOW_HOME": str(home), "COLUMNS": "200"}
    env.pop("METERFLOW_TEMP_DIR", None)
    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as out:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "meterflow"), "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return done.returncode, time.perf_counter() - start


def manifest_rows(settings: Settings) -> dict[str, dict[str, Any]]:
    files = [str(p) for p in manifest_files(settings)]
    if not files:
        return {}
    con = duckdb.connect()
    try:
        cur = con.execute("select * from read_parquet(?)", [files])
        names = [d[0] for d in cur.description]
        return {r[names.index("source_file")]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        con.close()


def lake_rows(settings: Settings, top: str) -> int:
    """Rows of every Parquet file under lake/<top>, read from the footers."""
    files = sorted(str(p) for p in layer_dir(settings, top).rglob("*.parquet"))
    if not files:
        return 0
    con = duckdb.connect()
    try:
        sql = "select coalesce(sum(num_rows), 0) from parquet_file_metadata(?)"
        row = con.execute(sql, [files]).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def check_files(close: Close, files: list[str], summary: dict[str, Any], manifest: dict[str, dict]) -> None:
    """Each file of the close: the status, rows in and quarantined rows the generator expects."""
    for name in files:
        want = summary["files"][name]
        got = manifest.get(name)
        close.file_checks += 1
        if got is None:
            close.file_mismatches.append(f"{name}: no manifest row")
            continue
        found = (got["status"], got["rows_quarantined"])
        expected = (want["status"], want["quarantined"] if want["status"] == "INGESTED" else 0)
        if want["status"] == "INGESTED" and got["rows_in"] != want["rows"]:
            close.file_mismatches.append(f"{name}: {got['rows_in']} rows in, {want['rows']} written")
        if found != expected:
            close.file_mismatches.append(f"{name}: {found} where the generator expects {expected}")


def check_rows(close: Close, settings: Settings, manifest: dict[str, dict]) -> None:
    """Rows in = rows accepted + rows quarantined, counted from the lake itself, over every file so far."""
    close.rows_in = sum(r["rows_in"] for r in manifest.values())
    close.accepted = lake_rows(settings, "raw")
    close.quarantined = lake_rows(settings, "quarantine")
    close.rows_lost = close.rows_in - close.accepted - close.quarantined
    stated = sum(r["rows_accepted"] + r["rows_quarantined"] for r in manifest.values())
    if stated != close.rows_in:
        close.rows_lost += abs(stated - close.rows_in)


def check_kpis(
    close: Close, settings: Settings, truth_dir: Path, periods: list[str], tables: tuple[str, ...]
) -> None:
    """Every mart_kpi_monthly column the truth `tables` have (kpis_company, kpis_region) in `periods`."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{settings.marts_path}' as m (read_only)")
        mart_cols = [r[0] for r in con.execute("describe m.mart_kpi_monthly").fetchall()]
        for truth in tables:
            cur = con.execute(
                "select * from read_parquet(?) where period in (select unnest(?::varchar[]))",
                [str(truth_dir / f"{truth}.parquet"), periods],
            )
            truth_cols = [d[0] for d in cur.description]
            truth_rows = cur.fetchall()
            cols = [c for c in truth_cols if c in mart_cols and c not in KEYS]
            marts = {
                tuple(r[:2]): r[2:]
                for r in con.execute(
                    f"select period, region_code, {', '.join(cols)} from m.mart_kpi_monthly"
                ).fetchall()
            }
            for row in truth_rows:
                t = dict(zip(truth_cols, row, strict=True))
                key = (t["period"], t["region_code"])
                got = marts.get(key)
                for i, col in enumerate(cols):
                    close.figures_checked += 1
                    value = None if got is None else got[i]
                    if got is None or not same(value, t[col]):
                        close.figures_wrong.append(f"{key} {col}: {value} != {t[col]}")
    finally:
        con.close()


def leftovers(settings: Settings) -> list[str]:
    folders = (tmp_dir(settings), settings.warehouse / ".building", settings.home / "tmp" / "quality")
    return [str(p) for d in folders if d.is_dir() for p in d.iterdir()]


def soak(work: Path, customers: int, start: str, end: str, seed: int, fault_rate: float) -> list[Close]:
    source, home = work / "source", work / "home"
    for folder in (source, home):
        shutil.rmtree(folder, ignore_errors=True)
    say(f"generating {customers:,} customers, {start}..{end}, seed {seed}, fault rate {fault_rate}")
    summary = generate(source, customers=customers, start=start, end=end, seed=seed, fault_rate=fault_rate)
    say(f"generated {summary}")
    truth_dir = source / "truth"
    drops = json.loads((truth_dir / "drops.json").read_text(encoding="utf-8"))
    expected = json.loads((truth_dir / "summary.json").read_text(encoding="utf-8"))
    settings = Settings(home=home)
    log = work / "runs.log"
    months = sorted(drops)
    closes = []
    for n, month in enumerate(months):
        for rel in drops[month]:
            dest = home / "landing" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / "landing" / rel, dest)
        code, seconds = meterflow_run(home, log)
        close = Close(month, code, round(seconds, 1), len(drops[month]))
        if code == 0:
            manifest = manifest_rows(settings)
            check_files(close, drops[month], expected, manifest)
            check_rows(close, settings, manifest)
            if n == len(months) - 1:
                check_kpis(close, settings, truth_dir, months, ("kpis_company", "kpis_region"))
            elif n >= 2:
                # the company's month is final two closes later: its re-sent readings come with the next
                # close, and an export re-issued a close later may correct lines of the month before its
                # own. Region rows are restated whenever a customer moves (the newest snapshot decides),
                # so they meet the truth only once the last snapshot is in.
                check_kpis(close, settings, truth_dir, [months[n - 2]], ("kpis_company",))
            close.leftovers = leftovers(settings)
        closes.append(close)
        say(line(close))
    return closes


def line(c: Close) -> str:
    return (
        f"close {c.close}: exit {c.exit_code}, {c.seconds:6.1f} s, {c.files:3d} files "
        f"({len(c.file_mismatches)} unexpected), rows in {c.rows_in:,}, accepted {c.accepted:,}, "
        f"quarantined {c.quarantined:,}, lost {c.rows_lost}, figures {c.figures_checked:,} checked, "
        f"{len(c.figures_wrong)} wrong, {len(c.leftovers)} files left"
    )


def totals(closes: list[Close]) -> dict[str, Any]:
    last = next((c for c in reversed(closes) if c.exit_code == 0), None)
    return {
        "months_closed": sum(c.exit_code == 0 for c in closes),
        "runs_failed": sum(c.exit_code != 0 for c in closes),
        "files": sum(c.files for c in closes),
        "files_unexpected": sum(len(c.file_mismatches) for c in closes),
        "rows_in": last.rows_in if last else 0,
        "accepted": last.accepted if last else 0,
        "quarantined": last.quarantined if last else 0,
        "rows_lost": sum(c.rows_lost for c in closes),
        "figures_checked": sum(c.figures_checked for c in closes),
        "figures_wrong": sum(len(c.figures_wrong) for c in closes),
        "files_left": sum(len(c.leftovers) for c in closes),
        "seconds": round(sum(c.seconds for c in closes), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000, help="customers (default 2000)")
    parser.add_argument("--start", default="2024-01", help="first month (default 2024-01)")
    parser.add_argument("--end", default="2025-12", help="last month (default 2025-12): 24 closes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault-rate", type=float, default=0.01)
    parser.add_argument("--work", type=Path, help="working folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="meterflow-soak-"))).absolute()
    work.mkdir(parents=True, exist_ok=True)
    closes = soak(work, args.customers, args.start, args.end, args.seed, args.fault_rate)
    result = totals(closes)
    print(
        f"months closed {result['months_closed']} (failed runs {result['runs_failed']}), "
        f"rows in {result['rows_in']:,}, accepted {result['accepted']:,}, "
        f"quarantined {result['quarantined']:,}, rows lost {result['rows_lost']}, "
        f"figures checked {result['figures_checked']:,}, wrong {result['figures_wrong']}, "
        f"files with an unexpected status {result['files_unexpected']}, temporary files left "
        f"{result['files_left']}, {result['seconds']:,} s of runs"
    )
    for c in closes:
        for problem in (c.file_mismatches + c.figures_wrong + c.leftovers)[:5]:
            print(f"  {c.close}: {problem}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"soak_{stamp}.json"
    out.write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "totals": result,
                    "closes": [asdict(c) for c in closes]}, indent=1),
        encoding="utf-8",
    )  # fmt: skip
    print(f"details in {out}; runs' output in {work / 'runs.log'}")
    bad = result["runs_failed"] or result["rows_lost"] or result["figures_wrong"] or result["files_left"]
    return 1 if bad or result["files_unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
