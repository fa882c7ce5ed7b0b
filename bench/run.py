"""meterflow's benchmark at company scale: `python -m bench.run` (`make bench`).

For each size (a share of the full company's 480,000 customers, 21 months 2024-01..2025-09) it generates
the company once (cached under bench/cache/<size>/), then measures every stage, the bare DuckDB and
pandas baselines, and a month close, each run in a fresh child process, and writes
bench/results/<timestamp>.json, bench/results/latest.md and a cost-vs-size chart.

    python -m bench.run                                  # 0.1, 0.3 and 1.0, three runs each (hours)
    python -m bench.run --sizes 0.01 --repeat 1          # a quick check of the harness (minutes)
    python -m bench.run --repeat 3,3,1                   # three runs at 0.1 and 0.3, one at 1.0
    python -m bench.run --sizes 0.1 --only ingest,bare_copy
    python -m bench.run --publish-docs                   # also fill docs/benchmarks.md and its chart
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import homes
from bench import sources as bench_sources
from bench.measure import (
    REPO,
    BenchError,
    Measurement,
    customers_for,
    machine_info,
    parse_sizes,
    run_child,
    say,
    size_label,
    summarize,
    versions,
)
from bench.results import chart, markdown, replace_marked, targets, write_json
from etl.settings import Settings
from etl.synth.compare import compare_with_truth, loss_hunting_accuracy
from etl.synth.operations import INSPECTIONS_PER_MONTH

ITEMS = (
    "generate",
    "ingest",
    "vee",
    "marts",
    "publish",
    "truth",
    "loss_hunting",
    "report",
    "bare_copy",
    "bare_dedupe",
    "pandas_kpi",
    "kpi_alone",
    "vee_month",
    "close",
    "sources",
    "floors",
)
ALIASES = {
    "all": ITEMS,
    "stages": ("generate", "ingest", "vee", "marts", "publish", "truth", "loss_hunting", "report"),
    "quality": ("ingest", "vee", "publish"),
    "baselines": ("bare_copy", "bare_dedupe", "pandas_kpi", "kpi_alone", "vee_month", "sources", "floors"),
}
# NEM12 vs contract CSV: meters at the full company's size (fewer in proportion), days of quarter hours
SOURCES_METERS_FULL = 1000
SOURCES_DAYS = 31
# stage -> (the snapshot it starts from, the snapshot its output becomes)
CHAIN = {
    "ingest": ("generated", "ingested"),
    "vee": ("ingested", "validated"),
    "marts": ("validated", "aggregated"),
    "publish": ("aggregated", "published"),
}
PRODUCER = {after: stage for stage, (_, after) in CHAIN.items()}
HISTORY_CHECK_MONTHS = 9


def parse_only(text: str) -> list[str]:
    """`ingest,baselines` -> the items in run order. Raises ValueError on an unknown name."""
    wanted: set[str] = set()
    for name in (n.strip() for n in text.split(",") if n.strip()):
        if name in ALIASES:
            wanted.update(ALIASES[name])
        elif name in ITEMS:
            wanted.add(name)
        else:
            known = ", ".join([*ITEMS, *ALIASES])
            raise ValueError(f"unknown benchmark item {name!r}; known: {known}")
    return [item for item in ITEMS if item in wanted]


def parse_repeats(text: str, sizes: int) -> list[int]:
    """`3` -> 3 for every size; `3,3,1` -> one count per size. Raises ValueError on anything else."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--repeat: {text!r} is not a number or a list of numbers") from None
    if len(counts) == 1:
        counts *= sizes
    if len(counts) != sizes:
        raise ValueError(f"--repeat: {len(counts)} counts for {sizes} sizes")
    if min(counts) < 1:
        raise ValueError("--repeat: every count must be at least 1")
    return counts


@dataclass
class _ClosePlan:
    """One family of month closes: the month closed, its history home and the homes its runs close in."""

    month: str
    months: int
    files: int
    history: Path
    homes: list[Path]
    setup: Measurement | None = None
    runs: list[Measurement] = field(default_factory=list)


class SizeBench:
    """The benchmark of one company size: its cached company, stage snapshots and measurements."""

    def __init__(self, args: argparse.Namespace, size: float, repeat: int, env: dict[str, str]) -> None:
        self.args = args
        self.size = size
        self.label = size_label(size)
        self.customers = customers_for(size)
        self.repeat = repeat
        self.env = env
        self.size_dir = Path(args.cache) / self.label
        self.work = self.size_dir / "work"
        self.snapshots: dict[str, Path] = {}
        self.failed: dict[str, str] = {}
        self.result: dict[str, Any] = {
            "size": size,
            "customers": self.customers,
            "repeat": repeat,
            "stages": {},
            "baselines": {},
            "errors": {},
        }

    def say(self, message: str) -> None:
        say(f"size {self.label} ({self.customers:,} customers): {message}")

    # -- the cached company --------------------------------------------------------------------------

    def company(self) -> Path:
        """The generated company's home, from the cache or generated now (and measured)."""
        if "generated" in self.snapshots:
            return self.snapshots["generated"]
        if "generate" in self.failed:
            raise BenchError(f"needs the generated company, which failed: {self.failed['generate']}")
        a = self.args
        params = homes.company_params(self.customers, a.start, a.end, a.seed, a.fault_rate)
        home = None if a.regenerate else homes.cached_home(self.size_dir, params)
        if home is not None:
            meta = homes.read_meta(self.size_dir) or {}
            self.result["stages"]["generate"] = {**meta.get("generate", {}), "cached": True}
            self.say(f"reusing the cached company in {home}")
        else:
            try:
                home = self._generate(params)
            except BenchError as exc:
                self.failed["generate"] = str(exc)
                raise
        self.snapshots["generated"] = home
        return home

    def _generate(self, params: dict[str, Any]) -> Path:
        homes.forget(self.size_dir)
        self.size_dir.mkdir(parents=True, exist_ok=True)
        home = self.size_dir / "home"
        repeats = self.repeat if "generate" in self.args.items else 1
        spec = {k: params[k] for k in ("customers", "start", "end", "seed", "fault_rate")}
        runs = []
        for n in range(repeats):
            # The first run becomes the cache; the others only time the generator again.
            target = home if n == 0 else self.work / f"generate-{n}"
            shutil.rmtree(target, ignore_errors=True)
            self.say(f"generate run {n + 1}/{repeats} into {target}")
            runs.append(self._measure("generate", {**spec, "home": str(target)}))
            if n:
                shutil.rmtree(target, ignore_errors=True)
        figures = {**summarize(runs), "cached": False, "extra": runs[0].extra}
        homes.write_meta(self.size_dir, params, figures)
        self.result["stages"]["generate"] = figures
        return home

    # -- snapshots of the stage chain ----------------------------------------------------------------

    def snapshot(self, name: str) -> Path:
        """The home after stage `name`'s producer; produced now by one unmeasured run when missing.

        Raises BenchError when a stage it depends on failed.
        """
        if name == "generated":
            return self.company()
        if name in self.snapshots:
            return self.snapshots[name]
        stage = PRODUCER[name]
        if stage in self.failed:
            raise BenchError(f"needs the output of {stage}, which failed: {self.failed[stage]}")
        before = self.snapshot(CHAIN[stage][0])
        home = self.fresh(name)
        homes.clone_home(before, home)
        self.say(f"preparing '{name}' ({stage}, not measured)")
        try:
            m = self._measure(stage, {"home": str(home)})
        except BenchError as exc:
            self.failed[stage] = str(exc)  # the items after it are skipped rather than retried
            raise
        # One run's figures are better than none for the ratios when the stage itself was not selected.
        self.result["stages"].setdefault(stage, {**summarize([m]), "preparation": True, "extra": m.extra})
        self.snapshots[name] = home
        return home

    def fresh(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _measure(self, task: str, spec: dict[str, Any]) -> Measurement:
        m = run_child(task, spec, env=self.env)
        self.say(
            f"  {task}: {m.seconds:,.1f} s (quality {m.quality_seconds:,.1f} s), "
            f"{m.peak_rss_bytes / 1024**3:.2f} GiB peak, rows {m.rows if m.rows is not None else '—'}"
        )
        return m

    def repeated(
        self,
        task: str,
        source: Path,
        name: str,
        spec: dict[str, Any] | None = None,
        prepare: Callable[[Path], None] | None = None,
        keep_last: bool = False,
    ) -> tuple[list[Measurement], Path | None]:
        """Run `task` `self.repeat` times, each on a fresh clone of `source`; keep the last home if asked."""
        runs = []
        kept = None
        for n in range(self.repeat):
            home = self.fresh(f"{name}-{n}")
            homes.clone_home(source, home)
            if prepare:
                prepare(home)
            self.say(f"{name} run {n + 1}/{self.repeat}")
            runs.append(self._measure(task, {"home": str(home), **(spec or {})}))
            if keep_last and n == self.repeat - 1:
                kept = home
            else:
                shutil.rmtree(home, ignore_errors=True)
        return runs, kept

    # -- the items -----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Measure every selected item; a failure is recorded and the items that need it are skipped."""
        shutil.rmtree(self.work, ignore_errors=True)
        items: dict[str, Callable[[], object]] = {
            "generate": self.company,
            "ingest": lambda: self.stage("ingest"),
            "vee": lambda: self.stage("vee"),
            "marts": lambda: self.stage("marts"),
            "publish": lambda: self.stage("publish"),
            "truth": self.truth,
            "loss_hunting": self.loss_hunting,
            "report": self.report,
            "bare_copy": self.bare_copy,
            "bare_dedupe": self.bare_dedupe,
            "pandas_kpi": self.pandas_kpi,
            "kpi_alone": self.kpi_alone,
            "vee_month": self.vee_month,
            "close": self.close,
            "sources": self.sources,
            "floors": self.floors,
        }
        for item in self.args.items:
            try:
                items[item]()
            except BenchError as exc:
                self.failed[item] = str(exc)
                self.result["errors"][item] = str(exc)
                self.say(f"{item} not measured: {exc}")
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return self.result

    def stage(self, stage: str) -> None:
        before, after = CHAIN[stage]
        runs, kept = self.repeated(stage, self.snapshot(before), stage, keep_last=True)
        self.result["stages"][stage] = {**summarize(runs), "extra": runs[-1].extra}
        if kept is not None:
            self.snapshots[after] = kept

    def truth(self) -> None:
        """The published marts and lake against the generator's truth: every row, figure and file."""
        found = compare_with_truth(Settings(home=self.snapshot("published")), self.company() / "truth")
        self.result["truth"] = {c.truth: {"ok": c.ok, "rows": c.rows, "figures": c.figures} for c in found}
        wrong = [c.describe() for c in found if not c.ok]
        self.say("truth: " + ("every row and figure equal" if not wrong else "; ".join(wrong)))
        if wrong:
            raise BenchError("the published figures disagree with the generator's truth: " + "; ".join(wrong))

    def loss_hunting(self) -> None:
        """The calendar-month balance, the hot spots and a month of inspections from the candidate list
        against the planted thefts (docs/loss_hunting.md)."""
        length = round(INSPECTIONS_PER_MONTH * self.size)
        found = loss_hunting_accuracy(
            Settings(home=self.snapshot("published")), self.company() / "truth", length
        )
        self.result["loss_hunting"] = asdict(found)
        self.say(found.describe())

    def report(self) -> None:
        published = self.snapshot("published")
        out = self.work / "report.html"
        runs, _ = self.repeated("report", published, "report", {"out": str(out)})
        self.result["stages"]["report"] = summarize(runs)

    def bare_copy(self) -> None:
        ingested = self.snapshot("ingested")
        files = [str(self.company() / "landing" / f) for f in ingested_files(ingested)]
        out = self.work / "bare_copy"
        runs = []
        for n in range(self.repeat):
            shutil.rmtree(out, ignore_errors=True)
            self.say(f"bare COPY run {n + 1}/{self.repeat} over {len(files)} files")
            runs.append(
                self._measure(
                    "bare_copy", {"home": str(self.fresh("bare_copy_home")), "files": files, "out": str(out)}
                )
            )
        shutil.rmtree(out, ignore_errors=True)
        self.result["baselines"]["bare_copy"] = summarize(runs)

    def bare_dedupe(self) -> None:
        out = self.work / "bare_dedupe_out"
        runs, _ = self.repeated("bare_dedupe", self.snapshot("ingested"), "bare_dedupe", {"out": str(out)})
        shutil.rmtree(out, ignore_errors=True)
        self.result["baselines"]["bare_dedupe"] = summarize(runs)
        # the same dedupe month by month: the raw lake is split by month, and so is VEE's work
        out = self.work / "bare_dedupe_by_month_out"
        ingested = self.snapshot("ingested")
        runs, _ = self.repeated("bare_dedupe_by_month", ingested, "bare_dedupe_by_month", {"out": str(out)})
        shutil.rmtree(out, ignore_errors=True)
        self.result["baselines"]["bare_dedupe_by_month"] = summarize(runs)

    def pandas_kpi(self) -> None:
        runs, _ = self.repeated("pandas_kpi", self.snapshot("published"), "pandas_kpi")
        comparison = runs[-1].extra.get("comparison", {})
        self.result["baselines"]["pandas_kpi"] = {**summarize(runs), "comparison": comparison}
        if not comparison.get("equal"):
            raise BenchError(
                f"pandas and mart_kpi_monthly disagree: {comparison.get('mismatch_count')} values, "
                f"keys only in pandas {comparison.get('only_pandas')}, "
                f"only in marts {comparison.get('only_marts')}, "
                f"first differences {comparison.get('mismatches', [])[:3]}"
            )

    def kpi_alone(self) -> None:
        """mart_kpi_monthly alone (bench.child.task_kpi): the models it reads, built from the lake in one
        process over the published home, the same figures as the published mart or the item fails."""
        runs, _ = self.repeated("kpi", self.snapshot("published"), "kpi_alone")
        self.result["baselines"]["kpi_alone"] = summarize(runs)

    def sources(self) -> None:
        """NEM12 against contract CSV carrying the same interval values (bench.sources), in this process:
        a month of quarter hours for a number of meters that grows with the company."""
        meters = max(50, round(SOURCES_METERS_FULL * self.size))
        self.say(f"NEM12 vs contract CSV: {meters} meters x {SOURCES_DAYS} days, {self.repeat} run(s) each")
        try:
            figures = bench_sources.measure(meters, SOURCES_DAYS, self.repeat)
        except (RuntimeError, AssertionError) as exc:
            raise BenchError(str(exc)) from exc
        self.result["baselines"]["sources"] = {"meters": meters, "days": SOURCES_DAYS, **figures}

    def floors(self) -> None:
        """Each stage's floor on this machine (bench.floors), on the files the stage reads: landing CSV
        for ingest, raw readings for VEE, raw bill lines and payments and the validated meter-months for
        the aggregates, the aggregates for publish."""
        from etl.lake import layer_dir, raw_files

        ingested = Settings.from_env(self.snapshot("ingested"))
        validated = Settings.from_env(self.snapshot("validated"))
        aggregates = layer_dir(Settings.from_env(self.snapshot("aggregated")), "aggregates")
        meter_months = layer_dir(validated, "validated") / "meter_monthly"
        inputs = {
            "ingest": ("csv", [self.company() / "landing" / f for f in ingested_files(ingested.home)]),
            "vee": ("parquet", raw_files(ingested, "interval_reads") + raw_files(ingested, "register_reads")),
            "marts": (
                "parquet",
                raw_files(validated, "bill_lines")
                + raw_files(validated, "payments")
                + sorted(meter_months.rglob("*.parquet")),
            ),
            "publish": (
                "parquet",
                sorted(
                    f
                    for table in aggregates.iterdir()
                    if not table.name.startswith("_")
                    for f in table.rglob("*.parquet")
                ),
            ),
        }
        spec = {"inputs": {s: (kind, [str(f) for f in files]) for s, (kind, files) in inputs.items()}}
        runs = []
        for n in range(self.repeat):
            self.say(f"floors run {n + 1}/{self.repeat}")
            runs.append(self._measure("floors", {"home": str(self.fresh("floors_home")), **spec}))
        self.result["floors"] = floor_medians([r.extra["floors"] for r in runs])

    def vee_month(self) -> None:
        """VEE over one month alone (the last), under the memory limit, and the bare dedupe of it."""
        company = self.company()
        drops = homes.month_drops(company)
        month = list(drops)[-1]
        files = month_alone(drops, month)
        home = self.fresh("month_ingested")
        homes.clone_home(company, home, landing_files=files)
        self.say(f"preparing one month alone ({month}: {len(files)} files; ingest not measured)")
        self._measure("ingest", {"home": str(home)})
        vee_runs, _ = self.repeated("vee", home, "vee_month")
        out = self.work / "bare_dedupe_month_out"
        bare_runs, _ = self.repeated("bare_dedupe", home, "bare_dedupe_month", {"out": str(out)})
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        self.result["baselines"]["vee_month"] = {
            "month": month,
            "vee": summarize(vee_runs),
            "bare_dedupe": summarize(bare_runs),
        }

    def close(self) -> None:
        """A month close after the full history; at the history-check size also after 9 months, and
        the same close without the operations files. The closes of the three take turns (one of each,
        then the next round), so a machine that slows down for a while weighs on all three alike."""
        drops = homes.month_drops(self.company())
        closes: dict[str, tuple[dict[str, list[str]], int]] = {"close": (drops, len(drops))}
        if self.label == self.args.history_size and len(drops) > HISTORY_CHECK_MONTHS:
            closes["close_short"] = (drops, HISTORY_CHECK_MONTHS)
        if self.label == self.args.history_size and any(
            f.startswith("operations/") for f in sum(drops.values(), [])
        ):
            # the same history and close without the operations files: what operations data costs a close
            without = {m: [f for f in files if not f.startswith("operations/")] for m, files in drops.items()}
            closes["close_without_operations"] = (without, len(drops))
        self.result.update(self._closes(closes))
        full = self.result["close"]["close"]["seconds"]
        if "close_short" in closes:
            short = self.result["close_short"]["close"]["seconds"]
            self.result["close_history"] = {
                "months": [HISTORY_CHECK_MONTHS, len(drops)],
                "ratio": full / short if short else None,
            }
        if "close_without_operations" in closes:
            seconds = self.result["close_without_operations"]["close"]["seconds"]
            self.result["close_operations"] = {"ratio": full / seconds if seconds else None}

    def _closes(self, closes: dict[str, tuple[dict[str, list[str]], int]]) -> dict[str, dict[str, Any]]:
        """For each named (drops, months): ingest and publish `months` - 1 months (one run, timed), then
        drop the last month's files and `meterflow run`, `--repeat` times, the closes in turns."""
        company = self.company()
        # Every landing link of every home is made before any history run reads the files: a link made
        # after it (even in another home: the homes share the files' inodes) would change their ctime and
        # make meterflow hash every earlier file again (homes.clone_state). The closing files too: the
        # short history's closing month is a month of the full history.
        plans: dict[str, _ClosePlan] = {}
        for name, (drops, months) in closes.items():
            month = list(drops)[months - 1]
            landed = homes.files_until(drops, months - 1)
            history = self.fresh(f"{name}_history")
            homes.clone_home(company, history, landing_files=landed)
            runs_in = []
            for n in range(self.repeat):
                home = homes.clone_home(company, self.fresh(f"{name}-{n}"), landing_files=landed)
                homes.add_landing_files(company, home, drops[month])
                runs_in.append(home)
            plans[name] = _ClosePlan(month, months, len(drops[month]), history, runs_in)
        for name, plan in plans.items():
            self.say(f"{name}: preparing {plan.months - 1} months of history (one run of meterflow run)")
            plan.setup = self._measure("run", {"home": str(plan.history), "run_prefix": "history"})
        for n in range(self.repeat):
            for name, plan in plans.items():
                home = plan.homes[n]
                homes.clone_state(plan.history, home)
                self.say(f"{name} ({plan.month} after {plan.months - 1} months) run {n + 1}/{self.repeat}")
                plan.runs.append(self._measure("run", {"home": str(home), "run_prefix": "close"}))
        # removed only now: unlinking a landing file changes its ctime in the homes still to run
        for plan in plans.values():
            for home in (*plan.homes, plan.history):
                shutil.rmtree(home, ignore_errors=True)
        return {
            name: {
                "month": plan.month,
                "history_months": plan.months - 1,
                "files": plan.files,
                "setup": summarize([plan.setup] if plan.setup else []),
                "close": {**summarize(plan.runs), "stage_seconds": plan.runs[-1].extra.get("stage_seconds")},
            }
            for name, plan in plans.items()
        }


def floor_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage: the input's size and the median disk read, bare scan and floor over the runs."""
    out = {}
    for stage, first in runs[0].items():
        out[stage] = {
            "kind": first["kind"],
            "bytes": first["disk"]["bytes"],
            "files": first["disk"]["files"],
            "rows": first["scan"]["rows"],
            "direct": all(r[stage]["disk"]["direct"] for r in runs),
            "disk_seconds": statistics.median(r[stage]["disk"]["seconds"] for r in runs),
            "scan_seconds": statistics.median(r[stage]["scan"]["seconds"] for r in runs),
            "seconds": statistics.median(r[stage]["seconds"] for r in runs),
        }
    return out


def ingested_files(home: Path) -> list[str]:
    """Landing files (relative to landing/) that the home's manifest records as INGESTED."""
    import pyarrow.parquet as pq

    from etl.lake import manifest_files

    settings = Settings.from_env(home)
    out = []
    for path in manifest_files(settings):
        table = pq.read_table(path, columns=["source_file", "status"], partitioning=None)
        out += [
            f
            for f, s in zip(table["source_file"].to_pylist(), table["status"].to_pylist(), strict=True)
            if s == "INGESTED"
        ]
    return sorted(out)


def month_alone(drops: dict[str, list[str]], month: str) -> list[str]:
    """One month of readings alone: every reference snapshot up to that month, and the month's readings."""
    reference = [f for m in drops if m <= month for f in drops[m] if f.startswith("reference/")]
    readings = [f for f in drops[month] if f.startswith("readings/")]
    return reference + readings


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of every child: the same DuckDB limits for meterflow and the baselines."""
    env = dict(os.environ)
    env["METERFLOW_MEMORY_LIMIT"] = args.memory_limit
    env["METERFLOW_THREADS"] = str(args.threads)
    env.setdefault("GX_ANALYTICS_ENABLED", "False")
    env.pop("METERFLOW_HOME", None)
    return env


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings.from_env(REPO / "data")
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark meterflow at company scale (never part of make test).",
        epilog=__doc__.split("\n\n", 2)[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes", default="0.1,0.3,1.0", help="shares of the full company (480,000 customers)"
    )
    parser.add_argument(
        "--repeat",
        default="3",
        help="measured runs per figure, the median counts: one number, or one per size (3,3,1)",
    )
    parser.add_argument("--only", default="all", help=f"items: {', '.join(ITEMS)}; or {', '.join(ALIASES)}")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache", help="generated companies")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where results go")
    parser.add_argument("--start", default="2024-01", help="first month of the company (YYYY-MM)")
    parser.add_argument("--end", default="2025-09", help="last month of the company (YYYY-MM)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--fault-rate", type=float, default=0.01, help="generator fault rate")
    parser.add_argument(
        "--memory-limit", default=defaults.memory_limit, help="DuckDB memory_limit for every run"
    )
    parser.add_argument("--threads", type=int, default=defaults.threads, help="DuckDB threads for every run")
    parser.add_argument(
        "--history-size", help="size at which a close after 9 months is compared (default: the largest)"
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="generate again even when the cache is valid"
    )
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the per-run data homes under <cache>/<size>/work"
    )
    parser.add_argument("--publish-docs", action="store_true", help="fill docs/benchmarks.md and its chart")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 1 when an item could not be measured or the KPI figures disagree."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
        args.items = parse_only(args.only)
        repeats = parse_repeats(args.repeat, len(sizes))
    except ValueError as exc:
        parser.error(str(exc))
    labels = [size_label(s) for s in sizes]
    args.history_size = size_label(float(args.history_size)) if args.history_size else labels[-1]
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    doc: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "settings": {
            "memory_limit": args.memory_limit,
            "threads": args.threads,
            "repeat": dict(zip(labels, repeats, strict=True)),
            "sizes": labels,
            "items": args.items,
            "start": args.start,
            "end": args.end,
            "seed": args.seed,
            "fault_rate": args.fault_rate,
        },
        "sizes": {},
    }
    say(
        f"benchmark {stamp}: sizes {', '.join(labels)}, "
        f"run(s) per figure {', '.join(map(str, repeats))}, "
        f"items {', '.join(args.items)}"
    )
    env = child_env(args)
    clock = time.perf_counter()
    for size, repeat in zip(sizes, repeats, strict=True):
        bench = SizeBench(args, size, repeat, env)
        doc["sizes"][bench.label] = bench.run()
        doc["targets"] = targets(doc["sizes"], args.memory_limit)
        write_json(doc, args.results / f"{stamp}.json")  # after each size: hours of work survive a crash
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["elapsed_seconds"] = time.perf_counter() - clock
    doc["targets"] = targets(doc["sizes"], args.memory_limit)
    png = chart(doc["sizes"], args.results / f"cost_vs_size_{stamp}.png")
    doc["chart"] = str(png) if png else None
    write_json(doc, args.results / f"{stamp}.json")
    text = markdown(doc)
    (args.results / "latest.md").write_text(text, encoding="utf-8")
    if png:
        shutil.copyfile(png, args.results / "cost_vs_size.png")
    sys.stdout.write(text)
    if args.publish_docs:
        publish_docs(text, png)
    say(f"results in {args.results / f'{stamp}.json'} and {args.results / 'latest.md'}")
    failed = any(r["errors"] for r in doc["sizes"].values())
    return 1 if failed else 0


def publish_docs(text: str, png: Path | None, docs: Path = REPO / "docs") -> None:
    """Put the figures into docs/benchmarks.md (between its markers) and the chart beside it.

    Raises ValueError when the page has lost its markers.
    """
    page = docs / "benchmarks.md"
    page.write_text(replace_marked(page.read_text(encoding="utf-8"), text), encoding="utf-8")
    if png:
        shutil.copyfile(png, docs / "benchmarks_cost_vs_size.png")
    say(f"updated {page}")


if __name__ == "__main__":
    sys.exit(main())
