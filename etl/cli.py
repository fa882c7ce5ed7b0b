"""The `meterflow` command: what people run. Prints for people; the work is done in etl.* modules."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from etl.contract import FOLDERS
from etl.errors import MeterflowError
from etl.settings import Settings, get_settings

EPILOG = textwrap.dedent(
    """
    examples:
      meterflow generate --customers 5000            write a sample company into ./data/landing
      meterflow run                                  ingest new files, validate, build, check, publish
      meterflow kpi --period 2025-09                 the company KPI table from the published marts
      METERFLOW_HOME=/srv/meterflow meterflow run    use another data home

    environment:
      METERFLOW_HOME          data home (default ./data)
      METERFLOW_MEMORY_LIMIT  DuckDB memory limit (default 4GB)
      METERFLOW_THREADS       DuckDB threads (default: the machine's cores)
      METERFLOW_TEMP_DIR      DuckDB spill directory (default <home>/tmp/duckdb)
      METERFLOW_MAX_FILE_MB   largest landing file accepted (default 4096)
    """
)


def _console():  # noqa: ANN202 - rich.console.Console
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def _fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def print_kpis(settings: Settings, period: str | None = None) -> None:
    """Print the company KPI table for a period. Raises MeterflowError when the marts are missing."""
    from rich.table import Table

    from etl.summary import company_kpis

    period, lines = company_kpis(settings, period)
    table = Table(title=f"Company KPIs, {period} (year to date)", title_justify="left")
    for col, justify in (
        ("figure", "left"),
        ("value", "right"),
        ("vs plan", "right"),
        ("year on year", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for line in lines:
        digits = 0 if line.unit == "kWh" else 2
        table.add_row(
            line.figure,
            f"{_fmt(line.value, digits)} {line.unit}",
            f"{_fmt(line.vs_plan, 2, signed=line.vs_plan_unit != '% of plan')} {line.vs_plan_unit}".strip()
            if line.vs_plan is not None
            else "—",
            f"{_fmt(line.yoy, 2, signed=True)} {line.yoy_unit}" if line.yoy is not None else "—",
        )
    _console().print(table)


def print_ingest(report) -> None:  # noqa: ANN001 - etl.ingest.IngestReport
    """Per dataset: files and rows ingested, accepted, quarantined and rejected; then each problem file."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Ingestion", title_justify="left")
    for col in (
        "dataset",
        "files",
        "ingested",
        "duplicate",
        "rejected",
        "skipped",
        "rows in",
        "accepted",
        "quarantined",
    ):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for row in report.by_dataset():
        table.add_row(
            str(row["dataset"]),
            *(
                f"{row[k]:,}"
                for k in (
                    "files",
                    "ingested",
                    "duplicate",
                    "rejected",
                    "skipped",
                    "rows_in",
                    "rows_accepted",
                    "rows_quarantined",
                )
            ),
        )
    console = _console()
    console.print(table)
    for f in report.files:
        if f.status in ("REJECTED", "SKIPPED"):
            console.print(f"  [yellow]{f.status.lower()}[/]: {escape(str(f.reason))}", soft_wrap=True)


def print_manifest(settings: Settings) -> None:
    """Per dataset, from the lake's manifest: files ingested and rejected, rows in, accepted, quarantined."""
    from rich.table import Table

    from etl.duck import connect
    from etl.lake import read_manifest

    con = connect(settings)
    rows = con.execute(
        f"""select dataset, count(*) filter (where status = 'INGESTED'),
                   count(*) filter (where status = 'REJECTED'),
                   sum(rows_in), sum(rows_accepted), sum(rows_quarantined)
            from {read_manifest(con, settings)} group by dataset order by min(ingest_seq)"""
    ).fetchall()
    con.close()
    table = Table(title=f"The lake's manifest ({settings.lake})", title_justify="left")
    for col in ("dataset", "files ingested", "rejected", "rows in", "accepted", "quarantined"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for row in rows:
        table.add_row(str(row[0]), *(f"{int(v or 0):,}" for v in row[1:]))
    _console().print(table)


def print_quality(settings: Settings, run_id: str) -> None:
    """Per stage of one run: checks, passed, warnings, critical failures and not checked; then each failed
    check, and each reason for which checks had nothing to check, once."""
    import duckdb
    from rich.markup import escape
    from rich.table import Table

    from etl.lake import quality_dir

    files = sorted((quality_dir(settings) / run_id).glob("*.parquet"))
    if not files:
        return
    con = duckdb.connect()
    rel = f"read_parquet({[str(f) for f in files]})"
    table = Table(title="Data quality", title_justify="left")
    for col in ("stage", "checks", "passed", "warnings", "critical", "not checked"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for row in con.execute(
        f"""select stage, count(*), count(*) filter (where passed),
                   count(*) filter (where not passed and severity = 'warning'),
                   count(*) filter (where not passed and severity = 'critical'),
                   count(*) filter (where passed is null)
            from {rel} group by stage order by min(checked_at)"""
    ).fetchall():
        table.add_row(str(row[0]), *(f"{v:,}" for v in row[1:]))
    console = _console()
    console.print(table)
    colours = {"critical": "red", "warning": "yellow"}
    for suite, check, severity, failed, checked, description in con.execute(
        f"""select suite, check_name, severity, rows_failed, rows_checked, description from {rel}
            where not passed and stage <> 'ingest' order by stage, suite, check_name"""
    ).fetchall():
        counts = description if failed is None else f"{failed:,} of {checked or 0:,} rows"
        colour = colours.get(severity, "yellow")
        console.print(f"  [{colour}]{severity}[/]: " + escape(f"{suite} {check}: {counts}"))
    # One line per reason: a dataset never delivered leaves a check of it at every stage with nothing to do.
    for description, suites in con.execute(
        f"""select description, string_agg(distinct suite, ', ' order by suite) from {rel}
            where passed is null group by description order by description"""
    ).fetchall():
        console.print(f"  {description} ({suites})", markup=False)


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    generate_with_progress(
        settings,
        customers=args.customers,
        start=args.start,
        end=args.end,
        seed=args.seed,
        fault_rate=args.fault_rate,
        edge_faults=args.edge_faults,
        truth=not args.no_truth,
        timezone=args.timezone or settings.timezone,
        solar_share=args.solar_share,
    )
    return 0


def generate_with_progress(settings: Settings, **options: Any) -> None:
    """etl.generate.generate into the data home with a progress bar; `options` are its keywords."""
    from rich.progress import Progress

    from etl.generate import generate

    with Progress(transient=True) as bar:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        summary = generate(settings.home, progress=progress, **options)
    _console().print(f"wrote {summary}; landing files in {settings.landing}")


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.markup import escape

    from etl.pipeline import run

    console = _console()
    if not any(path.is_file() for path in settings.landing.rglob("*")):
        # An empty or mistyped data home: say where files go, publish nothing.
        for folder in FOLDERS:
            (settings.landing / folder).mkdir(parents=True, exist_ok=True)
        console.print(
            f"[red]error:[/] landing/ holds no files ({escape(str(settings.landing))}, from METERFLOW_HOME "
            f"or --home): nothing ingested, nothing published; drop upstream files into its folders "
            f"({', '.join(FOLDERS)}), or write a sample company with `meterflow generate`",
            soft_wrap=True,
        )
        return 1
    with console.status("running") as status:
        report = run(settings, progress=lambda stage: status.update(f"{stage} …"))
    print_ingest(report.ingest)
    print_quality(settings, report.run_id)
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    if report.up_to_date:
        console.print(f"nothing new: the published marts at {settings.marts_path} are current ({timing})")
    else:
        console.print(f"published {report.published} (run {report.run_id}; {timing})")
    return 0


def cmd_stage(args: argparse.Namespace, settings: Settings) -> int:
    from etl import pipeline

    run_id = pipeline.new_run_id()
    if args.command == "ingest":
        print_ingest(pipeline.stage_ingest(settings, run_id, folders=args.folder or None))
    elif args.command == "vee":
        report = pipeline.stage_vee(settings, run_id)
        periods = ", ".join(report.periods_rebuilt) or "none"
        _console().print(f"VEE rebuilt {len(report.periods_rebuilt)} period(s): {periods}")
    elif args.command == "marts":
        report = pipeline.stage_marts(settings, run_id)
        _console().print(
            f"rebuilt {len(report.periods_rebuilt)} period(s): {', '.join(report.periods_rebuilt) or 'none'}"
        )
    elif args.command == "publish":
        path = pipeline.stage_publish(settings, run_id, force=args.force)
        _console().print(f"published {path}" if path else "the published marts are current")
    return 0


def cmd_kpi(args: argparse.Namespace, settings: Settings) -> int:
    print_kpis(settings, args.period)
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from etl.report import write_report

    with _console().status("drawing the report …"):
        path = write_report(settings, args.period, locale=args.locale, out=args.out)
    _console().print(f"wrote {path}")
    return 0


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    from etl.sqlshell import run_shell

    return run_shell(settings, args.query, as_csv=args.csv, raw=args.raw)


def cmd_dictionary(args: argparse.Namespace, settings: Settings) -> int:
    from etl.dictionary import DICTIONARY_PATH, write_dictionary

    path = write_dictionary(args.out or DICTIONARY_PATH)
    _console().print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from etl.devtools.airflow_local import run_dags

    console = _console()
    if not any(settings.landing.glob("*/*")):
        console.print(
            f"generating a sample company of {args.customers:,} customers into {settings.landing} …"
        )
        generate_with_progress(settings, customers=args.customers)
    from etl.models import models_in

    console.print("running the pipeline through the Airflow DAGs (dag.test) …")
    for dag_id, state, seconds in run_dags(settings):
        console.print(f"  {dag_id}: {state} in {seconds:.0f} s")
    print_manifest(settings)
    print_kpis(settings)
    console.print(
        f"\nThe marts are in [bold]{settings.marts_path}[/]. Query them with\n"
        "  .venv/bin/meterflow sql          (read-only SQL session; see docs/analysts.md)\n"
        "  .venv/bin/meterflow report --period <YYYY-MM>   (the management report as HTML)\n"
        "or from Python: duckdb.connect(path, read_only=True).\n"
        f"Tables: {', '.join(models_in('marts'))}."
    )
    return 0


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    from etl.sources.check import print_check

    return print_check(settings, args.files)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meterflow",
        description="meterflow: metering and billing data from landing files to published DuckDB marts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", type=Path, help="data home (overrides METERFLOW_HOME)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what each stage does")
    sub = parser.add_subparsers(dest="command", metavar="command")

    def add(
        name: str, help_: str, fn: Callable[[argparse.Namespace, Settings], int], example: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(fn=fn)
        return p

    g = add(
        "generate",
        "write a synthetic company as landing files (and its ground truth)",
        cmd_generate,
        "meterflow generate --customers 20000 --seed 7",
    )
    g.add_argument(
        "--customers", type=int, default=480_000, help="number of customers (full company: 480000)"
    )
    g.add_argument("--start", default="2024-01", help="first month, YYYY-MM (default 2024-01)")
    g.add_argument("--end", default="2025-09", help="last month, YYYY-MM (default 2025-09)")
    g.add_argument("--seed", type=int, default=7, help="random seed; the same seed writes the same bytes")
    g.add_argument("--fault-rate", type=float, default=0.01, help="share of planted faults (default 0.01)")
    g.add_argument("--no-truth", action="store_true", help="do not write the ground truth under <home>/truth")
    g.add_argument(
        "--edge-faults",
        action="store_true",
        help="also plant interval gaps at month starts and gaps next to negative readings",
    )
    g.add_argument(
        "--timezone",
        help="the company's IANA time zone, e.g. Europe/Brussels (default METERFLOW_TIMEZONE); "
        "run the pipeline with the same METERFLOW_TIMEZONE",
    )
    g.add_argument(
        "--solar-share",
        type=float,
        default=0.0,
        help="share of DT meters with rooftop solar, sending ACTIVE_EXPORT readings (default 0)",
    )

    add(
        "run",
        "ingest new landing files, run VEE, rebuild, check and publish the marts",
        cmd_run,
        "meterflow run",
    )
    i = add(
        "ingest",
        "only ingest new landing files into the lake",
        cmd_stage,
        "meterflow ingest --folder readings",
    )
    i.add_argument(
        "--folder",
        action="append",
        choices=tuple(FOLDERS),
        help="limit to a landing folder (repeatable)",
    )
    add("vee", "only run VEE over readings not yet validated", cmd_stage, "meterflow vee")
    add("marts", "only rebuild the monthly aggregates that new data touched", cmd_stage, "meterflow marts")
    p = add(
        "publish", "build, check and publish warehouse/marts.duckdb", cmd_stage, "meterflow publish --force"
    )
    p.add_argument("--force", action="store_true", help="publish even when the marts are current")
    k = add(
        "kpi",
        "print the company KPI table from the published marts",
        cmd_kpi,
        "meterflow kpi --period 2025-09",
    )
    k.add_argument("--period", help="YYYY-MM (default: the latest)")
    r = add(
        "report",
        "write the management report (one self-contained HTML file) from the published marts",
        cmd_report,
        "meterflow report --period 2025-09 --locale vi",
    )
    r.add_argument("--period", help="YYYY-MM (default: the latest)")
    r.add_argument("--locale", choices=("en", "vi"), default="en", help="language and number format")
    r.add_argument(
        "--out", type=Path, help="output file (default <home>/docs/reports/report_<period>_<locale>.html)"
    )
    q = add(
        "sql",
        "a read-only SQL session on the published marts (.tables, .schema, .quit)",
        cmd_sql,
        "meterflow sql -c \"select * from mart_kpi_monthly where region_code = 'ALL'\"",
    )
    q.add_argument("-c", "--command", dest="query", help="run this SQL, print the result and exit")
    q.add_argument("--csv", action="store_true", help="print -c results as CSV")
    q.add_argument(
        "--raw", action="store_true", help="numbers as stored (default: thousands grouped, 0-4 decimals)"
    )
    y = add(
        "dictionary",
        "regenerate docs/marts.md, the data dictionary, from the comments of sql/marts/*.sql",
        cmd_dictionary,
        "meterflow dictionary",
    )
    y.add_argument("--out", type=Path, help="output file (default: the repository's docs/marts.md)")
    d = add(
        "demo",
        "generate a sample company, run the Airflow DAGs on it, print the KPIs",
        cmd_demo,
        "meterflow demo --customers 3000",
    )
    d.add_argument(
        "--customers", type=int, default=3000, help="customers in the sample company (default 3000)"
    )
    o = add(
        "sources",
        "check vendor files (NEM12, NEM13, Green Button, profiles) without ingesting them",
        cmd_sources,
        "meterflow sources check landing/readings/NEM12_export.zip",
    )
    o.add_argument("action", choices=("check",), help="check: which reader takes each file, and its records")
    o.add_argument("files", nargs="+", type=Path, help="the files to check")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `meterflow` console command; returns the exit code."""
    from rich.markup import escape

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings(args.home)
    try:
        if settings.remote and args.command in ("run", "kpi", "report", "sql"):  # an S3 home
            from etl.objectstore import READ_AREAS, refresh

            refresh(settings, ["landing/"] if args.command == "run" else READ_AREAS)
        return int(args.fn(args, settings))
    except MeterflowError as exc:
        # soft_wrap: the terminal wraps a long message, between words; rich would cut paths mid-word
        _console().print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
