"""One measured run, in its own process: `python -m bench.child <task> <spec.json> <result.json>`.

The parent (bench.measure.run_child) reads the peak RSS of this process when it ends; this side times the
work alone (imports are done, and timed, before the clock starts) and counts the rows it handled after
the clock stops. Time spent inside etl.quality.check is recorded separately, per quality stage.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.measure import BenchError, own_peak_rss, say
from etl.settings import Settings

Task = Callable[[dict[str, Any]], dict[str, Any]]
# The modules each pipeline stage needs, imported before the clock starts.
STAGE_MODULES = {
    "ingest": ("etl.pipeline", "etl.ingest.run", "etl.quality"),
    "vee": ("etl.pipeline", "etl.vee.run", "etl.quality"),
    "marts": ("etl.pipeline", "etl.marts.aggregates"),
    "publish": ("etl.pipeline", "etl.marts.publish", "etl.quality"),
    "run": (
        "etl.pipeline",
        "etl.ingest.run",
        "etl.vee.run",
        "etl.marts.aggregates",
        "etl.marts.publish",
        "etl.quality",
    ),
}


class QualityClock:
    """Wraps etl.quality.check to add up the time spent inside it, per quality stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def install(self) -> None:
        from etl import quality

        original = quality.check

        def timed(*args: Any, **kwargs: Any) -> Any:
            stage = str(kwargs.get("stage", args[2] if len(args) > 2 else "unknown"))
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

        quality.check = timed  # the pipeline looks the function up on the module at call time

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def import_stage(stage: str) -> float:
    """Import what a stage needs (Great Expectations too when it checks data); returns the seconds."""
    start = time.perf_counter()
    for name in STAGE_MODULES[stage]:
        importlib.import_module(name)
    if "etl.quality" in STAGE_MODULES[stage]:
        importlib.import_module("great_expectations")
    return time.perf_counter() - start


def parquet_rows(files: Iterable[Path]) -> int:
    """Rows in Parquet files, from their footers (no data read)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def raw_rows(settings: Settings, *datasets: str) -> int:
    from etl.lake import raw_files

    return sum(parquet_rows(raw_files(settings, d)) for d in datasets)


def layer_rows(settings: Settings, layer: str, *tables: str) -> int:
    """Rows of lake/<layer>/<table>/ (every table when none is named)."""
    from etl.lake import layer_dir

    base = layer_dir(settings, layer)
    roots = [base / t for t in tables] if tables else [base]
    return sum(parquet_rows(sorted(r.rglob("*.parquet"))) for r in roots if r.exists())


def _settings(spec: dict[str, Any]) -> Settings:
    return Settings.from_env(spec["home"])


def _run_id(spec: dict[str, Any]) -> str:
    from etl.pipeline import new_run_id

    return new_run_id(spec.get("run_prefix", "bench"))


def task_generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Write a synthetic company into spec['home']/landing (and its truth)."""
    import dataclasses

    from etl.generate import generate

    last: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        share = done / total if total else 1.0
        if share - last.get(stage, -1.0) >= 0.1 or done == total:
            last[stage] = share
            say(f"  generate {stage}: {done:,}/{total:,}")

    start = time.perf_counter()
    summary = generate(
        Path(spec["home"]),
        customers=int(spec["customers"]),
        start=spec["start"],
        end=spec["end"],
        seed=int(spec["seed"]),
        fault_rate=float(spec["fault_rate"]),
        truth=True,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    details = dataclasses.asdict(summary) if dataclasses.is_dataclass(summary) else {"summary": str(summary)}
    rows = details.get("rows")
    total = sum(int(v) for v in rows.values()) if isinstance(rows, dict) else rows
    return {"seconds": seconds, "rows": total, "extra": json.loads(json.dumps(details, default=str))}


def _pipeline_stage(spec: dict[str, Any], name: str) -> tuple[float, Any, Settings, QualityClock, float]:
    from etl import pipeline

    settings = _settings(spec)
    imports = import_stage(name)
    clock = QualityClock()
    clock.install()
    run_id = _run_id(spec)
    calls: dict[str, Callable[[], Any]] = {
        "ingest": lambda: pipeline.stage_ingest(settings, run_id),
        "vee": lambda: pipeline.stage_vee(settings, run_id),
        "marts": lambda: pipeline.stage_marts(settings, run_id),
        "publish": lambda: pipeline.stage_publish(settings, run_id, force=True),
        "run": lambda: pipeline.run(settings, run_id),
    }
    start = time.perf_counter()
    report = calls[name]()
    return time.perf_counter() - start, report, settings, clock, imports


def _timed(
    seconds: float, clock: QualityClock, imports: float, rows: int | None, **extra: Any
) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "rows": rows,
        "quality_seconds": clock.total,
        "import_seconds": imports,
        "extra": {"quality_by_stage": clock.seconds, **extra},
    }


def task_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    """pipeline.stage_ingest: landing -> raw, with the raw checks."""
    seconds, report, _, clock, imports = _pipeline_stage(spec, "ingest")
    files = report.files
    return _timed(
        seconds,
        clock,
        imports,
        sum(f.rows_in for f in files),
        files={s: sum(1 for f in files if f.status == s) for s in {f.status for f in files}},
        rows_quarantined=sum(f.rows_quarantined for f in files),
    )


def task_vee(spec: dict[str, Any]) -> dict[str, Any]:
    """pipeline.stage_vee: raw readings -> validated, with the validated checks."""
    seconds, report, settings, clock, imports = _pipeline_stage(spec, "vee")
    return _timed(
        seconds,
        clock,
        imports,
        raw_rows(settings, "interval_reads", "register_reads"),
        periods_rebuilt=len(report.periods_rebuilt),
        rows_written=getattr(report, "rows", None),
    )


def task_marts(spec: dict[str, Any]) -> dict[str, Any]:
    """pipeline.stage_marts: raw billing + validated -> monthly aggregates."""
    seconds, report, settings, clock, imports = _pipeline_stage(spec, "marts")
    rows = raw_rows(settings, "bill_lines", "payments") + layer_rows(settings, "validated", "meter_monthly")
    return _timed(seconds, clock, imports, rows, periods_rebuilt=len(report.periods_rebuilt))


def task_publish(spec: dict[str, Any]) -> dict[str, Any]:
    """pipeline.stage_publish (forced): aggregates -> new marts file, marts checks, swap in."""
    seconds, path, settings, clock, imports = _pipeline_stage(spec, "publish")
    if path is None:
        raise BenchError(f"publish built nothing in {settings.home}")
    # the aggregates publish reads; lake/aggregates/_keys is the aggregates stage's own index, and the
    # operations' current state (etl.marts.operations) what the aggregates stage computes from
    from etl.lake import layer_dir
    from etl.marts.operations import CURRENT_MODELS

    tables = sorted(
        p.name
        for p in layer_dir(settings, "aggregates").iterdir()
        if not p.name.startswith("_") and p.name not in CURRENT_MODELS
    )
    rows = layer_rows(settings, "aggregates", *tables)
    return _timed(seconds, clock, imports, rows, marts_bytes=Path(path).stat().st_size)


def task_run(spec: dict[str, Any]) -> dict[str, Any]:
    """pipeline.run, what `meterflow run` does: a month close, or a run from scratch."""
    seconds, report, _, clock, imports = _pipeline_stage(spec, "run")
    files = report.ingest.files if report.ingest is not None else []
    return _timed(
        seconds,
        clock,
        imports,
        sum(f.rows_in for f in files),
        stage_seconds=report.seconds,
        published=report.published is not None,
    )


def task_report(spec: dict[str, Any]) -> dict[str, Any]:
    """etl.report.write_report (`meterflow report`) for the latest period of the published marts."""
    start = time.perf_counter()
    report = importlib.import_module("etl.report")
    importlib.import_module("matplotlib.pyplot")
    imports = time.perf_counter() - start
    settings = _settings(spec)
    start = time.perf_counter()
    path = report.write_report(settings, out=Path(spec["out"]))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": None,
        "import_seconds": imports,
        "extra": {"bytes": path.stat().st_size},
    }


def task_bare_copy(spec: dict[str, Any]) -> dict[str, Any]:
    """The bare DuckDB CSV -> Parquet copy of the landing files ingest accepted."""
    from bench.baselines import bare_copy

    settings = _settings(spec)
    files = [Path(f) for f in spec["files"]]
    start = time.perf_counter()
    rows = bare_copy(settings, files, Path(spec["out"]))
    return {"seconds": time.perf_counter() - start, "rows": rows, "extra": {"files": len(files)}}


def task_bare_dedupe(spec: dict[str, Any]) -> dict[str, Any]:
    """The bare DuckDB dedupe of the raw readings, to Parquet."""
    from bench.baselines import bare_dedupe

    settings = _settings(spec)
    rows_in = raw_rows(settings, "interval_reads", "register_reads")
    start = time.perf_counter()
    rows_out = bare_dedupe(settings, Path(spec["out"]))
    return {"seconds": time.perf_counter() - start, "rows": rows_in, "extra": {"rows_written": rows_out}}


def task_bare_dedupe_by_month(spec: dict[str, Any]) -> dict[str, Any]:
    """The same bare dedupe, one raw month partition at a time, to Parquet."""
    from bench.baselines import bare_dedupe_by_month

    settings = _settings(spec)
    rows_in = raw_rows(settings, "interval_reads", "register_reads")
    start = time.perf_counter()
    rows_out = bare_dedupe_by_month(settings, Path(spec["out"]))
    return {"seconds": time.perf_counter() - start, "rows": rows_in, "extra": {"rows_written": rows_out}}


def task_pandas_kpi(spec: dict[str, Any]) -> dict[str, Any]:
    """The KPIs the pandas way, timed; then compared with the published mart_kpi_monthly."""
    from bench import pandas_kpi

    settings = _settings(spec)
    start = time.perf_counter()
    ours = pandas_kpi.compute(settings)
    seconds = time.perf_counter() - start
    comparison = pandas_kpi.compare(ours, pandas_kpi.read_mart(settings.marts_path))
    return {
        "seconds": seconds,
        "rows": len(ours),
        "extra": {"comparison": json.loads(json.dumps(comparison, default=str))},
    }


def task_floors(spec: dict[str, Any]) -> dict[str, Any]:
    """Each stage's floor on this machine (bench.floors): its input read from disk, and scanned bare."""
    from bench.floors import stage_floor

    settings = _settings(spec)
    found = {
        stage: stage_floor(settings, [Path(f) for f in files], kind)
        for stage, (kind, files) in spec["inputs"].items()
    }
    return {"seconds": sum(f["seconds"] for f in found.values()), "rows": None, "extra": {"floors": found}}


# mart_kpi_monthly's inputs that come from the lake's raw and validated data in one process; the calendar-
# month consumption (docs/loss_hunting.md), which the pandas script does not compute, is read as the
# aggregates stage left it.
KPI_INPUTS = (
    "int_sales__monthly",
    "int_cashless__monthly",
    "int_energy_received__monthly",
    "int_plans__current",
)
KPI_GIVEN = ("int_consumption__calendar_monthly",)


def task_kpi(spec: dict[str, Any]) -> dict[str, Any]:
    """mart_kpi_monthly alone: the models it reads built over every period in one pass from the raw and
    validated lake (no key index, no Parquet written, no quality checks), then the mart; compared, after
    the clock, with the published mart_kpi_monthly (every value equal)."""
    start = time.perf_counter()
    from etl.duck import connect
    from etl.lake import aggregates_dir, partition_files
    from etl.marts import aggregates
    from etl.models import build, register_parquet

    imports = time.perf_counter() - start
    settings = _settings(spec)
    start = time.perf_counter()
    con = connect(settings)
    periods = sorted(aggregates.known_periods(settings))
    aggregates.register_sources(con, settings)
    aggregates.register_period_sources(
        con, settings, periods, {d: set(periods) for d in aggregates.PERIODIC_DATASETS}
    )
    build(con, KPI_INPUTS, params={"build_periods": periods})
    for model in KPI_INPUTS:
        con.execute(f"create or replace temp view aggregates_{model} as select * from {model}")
    for model in KPI_GIVEN:
        parts = partition_files(aggregates_dir(settings, model))
        register_parquet(con, f"aggregates_{model}", parts, aggregates.CALENDAR_AGGREGATES[model])
    build(con, ["mart_kpi_monthly"])
    seconds = time.perf_counter() - start
    con.execute(f"attach '{settings.marts_path.as_posix()}' as published (read_only)")
    # publish gives the marts a region_name after the figures; the rest must be the same, value for value
    con.execute(
        "create temp view published_kpi as select * exclude (region_name) from published.mart_kpi_monthly"
    )
    row = con.execute(
        """
        select
            (select count(*) from mart_kpi_monthly),
            (select count(*) from (from mart_kpi_monthly except all from published_kpi)),
            (select count(*) from (from published_kpi except all from mart_kpi_monthly))
        """
    ).fetchall()[0]
    con.close()
    rows, only_here, only_published = (int(v) for v in row)
    if only_here or only_published:
        raise BenchError(
            f"mart_kpi_monthly built alone differs from the published one: {only_here} rows only here, "
            f"{only_published} only in the published marts"
        )
    return {
        "seconds": seconds,
        "rows": rows,
        "import_seconds": imports,
        "extra": {"periods": len(periods), "equal_to_published": True},
    }


TASKS: dict[str, Task] = {
    "generate": task_generate,
    "ingest": task_ingest,
    "vee": task_vee,
    "marts": task_marts,
    "publish": task_publish,
    "run": task_run,
    "report": task_report,
    "bare_copy": task_bare_copy,
    "bare_dedupe": task_bare_dedupe,
    "bare_dedupe_by_month": task_bare_dedupe_by_month,
    "pandas_kpi": task_pandas_kpi,
    "floors": task_floors,
    "kpi": task_kpi,
}


def main(argv: list[str]) -> int:
    """Run one task and write its result JSON; the exit code says whether it worked."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    task, spec_path, result_path = argv
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        result = TASKS[task](spec)
    except Exception as exc:  # any failure of the measured code: the parent records it and goes on
        traceback.print_exc()
        error = {"error": f"{type(exc).__name__}: {exc}"}
        Path(result_path).write_text(json.dumps(error, default=str), encoding="utf-8")
        return 1
    result["vmhwm_bytes"] = own_peak_rss()
    Path(result_path).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
