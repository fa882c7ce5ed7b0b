"""Three companies on the cluster's two Celery workers against one after the other with `meterflow run`.

    python -m bench.cluster                     # three companies of size 0.1 (48,000 customers each)
    python -m bench.cluster --size 0.005        # a quick check of the harness

Each company is generated once into `<cache>/<size>/<code>/` (seeds 7, 8, 9). One after the other: a
`meterflow run` per company in a fresh data home, one at a time. On the cluster: `make cluster`'s processes
with the three companies in a companies file and the DAGs unpaused; its time is from the first task's start
to the last task's end in Airflow's metadata (the cluster's own start-up is reported apart). Both ways must
publish the same marts. Prints the throughput in companies per hour and writes
`<results>/cluster_<timestamp>.json`.

The cost of S3 against local disk, for one month close of one company (PCA): its earlier months are run
first (untimed), then the last month's files land and one `meterflow run` is timed, on a local home and on
an S3 home (`s3://meterflow/...` on a SeaweedFS server on loopback, the working copy kept from the earlier
months, as on a host that closes every month); median of `--runs` runs each, and both must publish the
same marts.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FULL_COMPANY = 480_000
CODES = ("PCA", "PCB", "PCC")


def generate_companies(cache: Path, size: float) -> dict[str, Path]:
    """The companies' generated homes (made once per size and reused)."""
    from etl.generate import generate

    homes = {}
    for seed, code in enumerate(CODES, start=7):
        home = cache / f"{size:g}" / code.lower()
        done = home / "generated.json"
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)
            generate(home, customers=int(FULL_COMPANY * size), seed=seed, fault_rate=0.01)
            done.write_text(json.dumps({"size": size, "seed": seed}), encoding="utf-8")
        homes[code] = home
    return homes


def link_landing(source: Path, home: Path) -> None:
    shutil.copytree(source / "landing", home / "landing", copy_function=os.link)


def meterflow_run(env: dict[str, str], home: str | Path | None = None) -> float:
    """One `meterflow run` (of METERFLOW_HOME, or `home`); returns its seconds."""
    command = [
        str(Path(sys.executable).parent / "meterflow"),
        *(["--home", str(home)] if home else []),
        "run",
    ]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def land(source: Path, files: list[str], landing: Path) -> None:
    """Link the named landing files (paths relative to landing/) of a generated home into `landing`."""
    for name in files:
        target = landing / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source / "landing" / name, target)


def s3_against_local(source: Path, work: Path, runs: int) -> dict[str, Any]:
    """The last month close of one company, timed on a local home and on an S3 home (see the docstring)."""
    import statistics

    from etl.devtools.cluster import SeaweedS3
    from etl.objectstore import download, upload_tree

    drops = json.loads((source / "truth" / "drops.json").read_text(encoding="utf-8"))
    months = sorted(drops)
    history = [f for m in months[:-1] for f in drops[m]]
    close = drops[months[-1]]
    local_seconds, s3_seconds, same = [], [], True
    server = SeaweedS3(
        work / "seaweedfs", "bench", "bench-" + os.urandom(12).hex(), SeaweedS3.pick_ports(set())
    )
    server.start("meterflow")
    os.environ.update(server.environment())  # for upload_tree and download
    try:
        for number in range(runs):
            home = work / "local" / str(number)
            env = dict(os.environ, METERFLOW_HOME=str(home))
            land(source, history, home / "landing")
            meterflow_run(env)
            land(source, close, home / "landing")
            local_seconds.append(meterflow_run(env))

            uri = f"s3://meterflow/bench/{number}"
            env = dict(os.environ, **server.environment(), METERFLOW_WORK_DIR=str(work / "work"))
            drop = work / "drop" / str(number)
            land(source, history, drop / "history")
            land(source, close, drop / "close")
            upload_tree(drop / "history", f"{uri}/landing")
            meterflow_run(env, uri)
            upload_tree(drop / "close", f"{uri}/landing")
            s3_seconds.append(meterflow_run(env, uri))
            marts = download(uri, "warehouse/marts.duckdb", work / "check" / f"{number}.duckdb")
            same = same and marts_rows(marts) == marts_rows(home / "warehouse" / "marts.duckdb")
    finally:
        server.kill()
    local, s3 = statistics.median(local_seconds), statistics.median(s3_seconds)
    return {
        "month": months[-1],
        "files": len(close),
        "runs": runs,
        "local_seconds": local_seconds,
        "s3_seconds": s3_seconds,
        "local_median_seconds": local,
        "s3_median_seconds": s3,
        "s3_over_local": s3 / local,
        "same_marts": same,
    }


def marts_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every mart table but mart_data_quality (which records each run), rows sorted."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
        return {
            t: sorted(con.execute(f'select * from "{t}"').fetchall(), key=repr)
            for t in tables
            if t != "mart_data_quality"
        }
    finally:
        con.close()


def one_after_the_other(homes: dict[str, Path], work: Path) -> tuple[float, dict[str, Path]]:
    """`meterflow run` for each company in turn; returns the seconds and the published marts files."""
    marts = {}
    start = time.perf_counter()
    for code, source in homes.items():
        home = work / "sequential" / code.lower()
        link_landing(source, home)
        env = dict(os.environ, METERFLOW_HOME=str(home))
        subprocess.run([str(Path(sys.executable).parent / "meterflow"), "run"], env=env, check=True, cwd=REPO)
        marts[code] = home / "warehouse" / "marts.duckdb"
    return time.perf_counter() - start, marts


def on_the_cluster(homes: dict[str, Path], work: Path, timeout: float) -> dict[str, Any]:
    """The three companies on the cluster; returns its timings and the published marts files."""
    from etl.devtools.cluster import airflow_db, start, stop, wait_until_settled
    from etl.settings import Settings

    base = work / "cluster"
    lines = ['[corporation]\ncode = "NPC"\nhome = "npc"\n']
    for code, source in homes.items():
        link_landing(source, base / code.lower())
        lines.append(
            f'[[company]]\ncode = "{code}"\nhome = "{code.lower()}"\ntimezone = "Asia/Ho_Chi_Minh"\n'
        )
    companies = base / "companies.toml"
    companies.write_text("\n".join(lines), encoding="utf-8")
    settings = Settings(home=base)
    began = time.perf_counter()
    cluster = start(settings, api_port=_free_port(), companies=companies, unpause=True)
    try:
        startup = time.perf_counter() - began
        wait_until_settled(cluster, timeout)
        con = airflow_db(cluster)
        with con.cursor() as cur:
            cur.execute(
                "select extract(epoch from max(end_date) - min(start_date)), count(*) from task_instance "
                "where start_date is not null"
            )
            seconds, tasks = cur.fetchone()
            cur.execute("select count(*) from dag_run where state <> 'success'")
            unsuccessful = cur.fetchone()[0]
        con.close()
    finally:
        stop(settings)
        if cluster.pg_dir and cluster.pg_dir.exists():
            shutil.rmtree(cluster.pg_dir)
    return {
        "startup_seconds": startup,
        "seconds": float(seconds),
        "tasks": int(tasks),
        "unsuccessful_runs": int(unsuccessful),
        "marts": {code: base / code.lower() / "warehouse" / "marts.duckdb" for code in homes},
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=0.1, help="share of the full company (default 0.1)")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache" / "cluster")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the cluster may take")
    parser.add_argument("--runs", type=int, default=3, help="runs of the S3 against local close (median)")
    args = parser.parse_args(argv)
    homes = generate_companies(args.cache, args.size)
    work = Path(tempfile.mkdtemp(prefix="meterflow-bench-cluster-", dir=args.cache))
    try:
        sequential, local_marts = one_after_the_other(homes, work)
        cluster = on_the_cluster(homes, work, args.timeout)
        same = all(marts_rows(local_marts[c]) == marts_rows(cluster["marts"][c]) for c in homes)
        s3 = s3_against_local(homes[CODES[0]], work / "s3", args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": args.size,
        "customers_per_company": int(FULL_COMPANY * args.size),
        "companies": len(homes),
        "one_after_the_other_seconds": sequential,
        "cluster_seconds": cluster["seconds"],
        "cluster_startup_seconds": cluster["startup_seconds"],
        "cluster_tasks": cluster["tasks"],
        "cluster_unsuccessful_runs": cluster["unsuccessful_runs"],
        "companies_per_hour_one_after_the_other": len(homes) / sequential * 3600,
        "companies_per_hour_cluster": len(homes) / cluster["seconds"] * 3600,
        "same_marts": same,
        "s3_vs_local": s3,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.results / f"cluster_{stamp}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{len(homes)} companies of {result['customers_per_company']:,} customers:\n"
        f"  one after the other, meterflow run: {sequential:.1f} s "
        f"= {result['companies_per_hour_one_after_the_other']:.1f} companies/hour\n"
        f"  cluster, 2 Celery workers: {cluster['seconds']:.1f} s over {cluster['tasks']} tasks "
        f"= {result['companies_per_hour_cluster']:.1f} companies/hour "
        f"(start-up {cluster['startup_seconds']:.1f} s apart)\n"
        f"  same marts both ways: {'yes' if same else 'NO'}\n"
        f"  one month close ({s3['month']}, {s3['files']} files) of {CODES[0]}, median of {s3['runs']}: "
        f"local home {s3['local_median_seconds']:.1f} s, S3 home {s3['s3_median_seconds']:.1f} s "
        f"(x{s3['s3_over_local']:.2f}); same marts: {'yes' if s3['same_marts'] else 'NO'}"
    )
    return 0 if same and s3["same_marts"] and cluster["unsuccessful_runs"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
