"""From the benchmark's measurements to ratios, targets, a markdown report and a cost-vs-size chart."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measure import fit_exponent, memory_bytes
from etl.lake import write_json_atomic

STAGES = ("generate", "ingest", "vee", "marts", "publish", "report")
SCRATCH_STAGES = ("ingest", "vee", "marts", "publish")  # what `meterflow run` does on an empty lake
QUALITY_STAGES = ("ingest", "vee", "publish")
GB = 1024**3
TARGETS = {
    "ingest_vs_bare_copy": 0.5,  # ingest rows/s at least half of a bare COPY's
    "vee_vs_bare_dedupe": 2.0,  # VEE at most twice a bare dedupe's time
    "vee_vs_bare_dedupe_by_month": 2.0,  # ... done month by month (the raw lake is split by month)
    "pandas_vs_meterflow": 2.0,  # every mart built at least 2x faster than pandas computes the KPIs
    "pandas_vs_kpi_alone": 5.0,  # mart_kpi_monthly and the models it reads at least 5x faster than pandas
    "scratch_seconds": 10 * 60,  # the full company from scratch
    "close_seconds": 60,  # a month close of the full company
    "rss_headroom": 1 * GB,  # any stage's peak RSS: DuckDB's memory_limit plus the Python process
    "quality_share": 0.25,
    "growth_exponent": 1.2,  # linear, with room for measurement noise
    "history_ratio": 1.1,  # a close after 21 months costs about what it costs after 9
    "operations_close_ratio": 1.05,  # a close with operations files costs at most 5 % more than without
    "nem12_vs_csv": 0.5,  # NEM12 ingest at least half the contract CSV's values per second
}
MARK_START = "<!-- bench:results:start -->"
MARK_END = "<!-- bench:results:end -->"


def core_seconds(stage: dict[str, Any] | None) -> float | None:
    """A stage's median time without the time spent inside quality.check."""
    if not stage or stage.get("seconds") is None:
        return None
    return stage["seconds"] - (stage.get("quality_seconds") or 0.0)


def _repeats(repeat: int | dict[str, int]) -> str:
    """`3` or {'0.1': 3, '1.0': 1} -> '3 run(s) per figure' or 'runs per figure: 3 at 0.1, 1 at 1.0'."""
    if isinstance(repeat, int):
        return f"{repeat} run(s) per figure"
    counts = set(repeat.values())
    if len(counts) == 1:
        return f"{counts.pop()} run(s) per figure"
    return "runs per figure: " + ", ".join(f"{n} at size {label}" for label, n in repeat.items())


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def size_ratios(result: dict[str, Any]) -> dict[str, float | None]:
    """The side-by-side ratios of one size (None where a side is missing)."""
    stages = result.get("stages", {})
    base = result.get("baselines", {})
    ingest_core = core_seconds(stages.get("ingest"))
    ingest_rate = ratio((stages.get("ingest") or {}).get("rows"), ingest_core)
    bare = base.get("bare_copy") or {}
    bare_rate = ratio(bare.get("rows"), bare.get("seconds"))
    marts = core_seconds(stages.get("marts"))
    publish = core_seconds(stages.get("publish"))
    meterflow_kpi = marts + publish if marts is not None and publish is not None else None
    month = base.get("vee_month") or {}
    return {
        "ingest_vs_bare_copy": ratio(ingest_rate, bare_rate),
        "vee_vs_bare_dedupe": ratio(
            core_seconds(stages.get("vee")), (base.get("bare_dedupe") or {}).get("seconds")
        ),
        "vee_vs_bare_dedupe_by_month": ratio(
            core_seconds(stages.get("vee")), (base.get("bare_dedupe_by_month") or {}).get("seconds")
        ),
        "meterflow_kpi_seconds": meterflow_kpi,
        "pandas_vs_meterflow": ratio((base.get("pandas_kpi") or {}).get("seconds"), meterflow_kpi),
        "pandas_vs_kpi_alone": ratio(
            (base.get("pandas_kpi") or {}).get("seconds"), (base.get("kpi_alone") or {}).get("seconds")
        ),
        "vee_month_vs_bare_dedupe": ratio(
            core_seconds(month.get("vee")), (month.get("bare_dedupe") or {}).get("seconds")
        ),
        "scratch_seconds": _sum([(stages.get(s) or {}).get("seconds") for s in SCRATCH_STAGES]),
    }


def marts_build_quality_share(result: dict[str, Any]) -> float | None:
    """The marts checks (run in publish) against the whole marts build: aggregates and publish."""
    stages = result.get("stages", {})
    publish = stages.get("publish") or {}
    build = _sum([(stages.get("marts") or {}).get("seconds"), publish.get("seconds")])
    return ratio(publish.get("quality_seconds"), build)


def _sum(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))


def growth(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Per stage (and the month close), the exponent b of time = a x customers^b across sizes."""
    out: dict[str, float | None] = {}
    for stage in (*STAGES, "close"):
        points = []
        for result in results.values():
            seconds = (
                (result.get("close") or {}).get("close", {}).get("seconds")
                if stage == "close"
                else (result.get("stages", {}).get(stage) or {}).get("seconds")
            )
            if seconds:
                points.append((result["customers"], seconds))
        out[stage] = fit_exponent([p[0] for p in points], [p[1] for p in points]) if len(points) > 1 else None
    return out


def _target(
    name: str, scope: str, value: float | None, limit: float, higher_is_better: bool, unit: str = ""
) -> dict:
    met = None if value is None else (value >= limit if higher_is_better else value <= limit)
    return {
        "target": name,
        "scope": scope,
        "value": value,
        "limit": limit,
        "sense": ">=" if higher_is_better else "<=",
        "unit": unit,
        "met": met,
    }


def targets(results: dict[str, dict[str, Any]], memory_limit: str) -> list[dict[str, Any]]:
    """Every target of the benchmark; those set for the full company are checked at the largest size run."""
    out = []
    largest = max(results, key=lambda label: results[label]["customers"], default=None)
    for label, result in results.items():
        out += _size_targets(result, f"size {label}", memory_limit)
        if label == largest:
            out += _full_company_targets(result, f"size {label}", memory_limit)
    for stage, exponent in growth(results).items():
        if exponent is not None and stage != "generate":
            name = f"growth of {stage} with size (exponent)"
            out.append(_target(name, "all sizes", exponent, TARGETS["growth_exponent"], False))
    return out


def _truth_cell(truth: dict[str, dict[str, Any]]) -> str:
    """'yes (N figures)' when every truth table agreed, else which did not; '—' when not compared."""
    if not truth:
        return "—"
    bad = [name for name, t in truth.items() if not t["ok"]]
    figures = sum(int(t["figures"]) for t in truth.values())
    return f"yes ({figures:,} figures)" if not bad else "NO: " + ", ".join(bad)


def _size_targets(result: dict[str, Any], scope: str, memory_limit: str) -> list[dict[str, Any]]:
    """The ratios, peak RSS and quality shares, which hold at every size."""
    r = size_ratios(result)
    ratios = (
        ("ingest rows/s vs bare COPY", "ingest_vs_bare_copy", True),
        ("VEE time vs bare dedupe by month", "vee_vs_bare_dedupe_by_month", False),
        ("pandas time (KPIs) vs every mart built (aggregates + publish)", "pandas_vs_meterflow", True),
    )
    out = [_target(name, scope, r[key], TARGETS[key], higher, "x") for name, key, higher in ratios]
    if r["pandas_vs_kpi_alone"] is not None:
        key = "pandas_vs_kpi_alone"
        out.append(_target("pandas time vs mart_kpi_monthly alone", scope, r[key], TARGETS[key], True, "x"))
    comparison = (result.get("baselines", {}).get("pandas_kpi") or {}).get("comparison") or {}
    if comparison:
        equal = 1.0 if comparison.get("equal") else 0.0
        out.append(_target("KPIs equal to pandas (1e-6 relative)", scope, equal, 1.0, True, "bool"))
    truth = result.get("truth") or {}
    if truth:
        equal = 1.0 if all(t["ok"] for t in truth.values()) else 0.0
        out.append(_target("marts and lake equal the generator's truth", scope, equal, 1.0, True, "bool"))
    close = (result.get("close") or {}).get("close") or {}
    peaks: list[tuple[str, int]] = [
        (name, int(figures["peak_rss_bytes"]))
        for name, figures in [*((s, result["stages"].get(s) or {}) for s in STAGES[1:]), ("close", close)]
        if figures.get("peak_rss_bytes") is not None
    ]
    worst: tuple[str | None, int | None] = max(peaks, key=lambda p: p[1], default=(None, None))
    out.append(
        _target(
            "peak RSS, largest stage" + (f" ({worst[0]})" if worst[0] else "") + " vs memory_limit + 1 GB",
            scope,
            worst[1],
            memory_bytes(memory_limit) + TARGETS["rss_headroom"],
            False,
            "B",
        )
    )
    for stage in ("ingest", "vee"):
        share = (result["stages"].get(stage) or {}).get("quality_share")
        out.append(
            _target(f"data quality share of {stage}", scope, share, TARGETS["quality_share"], False, "%")
        )
    name = "data quality share of the marts build (aggregates + publish)"
    out.append(_target(name, scope, marts_build_quality_share(result), TARGETS["quality_share"], False, "%"))
    history = result.get("close_history") or {}
    if history:
        name = "close after full history vs after 9 months"
        out.append(_target(name, scope, history.get("ratio"), TARGETS["history_ratio"], False, "x"))
    sources = (result.get("baselines") or {}).get("sources") or {}
    if sources:
        name = "NEM12 values/s vs contract CSV"
        out.append(_target(name, scope, sources.get("ratio"), TARGETS["nem12_vs_csv"], True, "x"))
    operations = result.get("close_operations") or {}
    if operations:
        name = "close with operations files vs without"
        ratio = operations.get("ratio")
        out.append(_target(name, scope, ratio, TARGETS["operations_close_ratio"], False, "x"))
    return out


def _full_company_targets(result: dict[str, Any], scope: str, memory_limit: str) -> list[dict[str, Any]]:
    """From scratch, month close and VEE's one month under the memory limit: set for the full company."""
    close = (result.get("close") or {}).get("close") or {}
    scratch = size_ratios(result)["scratch_seconds"]
    out = [
        _target("from scratch (ingest..publish)", scope, scratch, TARGETS["scratch_seconds"], False, "s"),
        _target(
            "month close (meterflow run)", scope, close.get("seconds"), TARGETS["close_seconds"], False, "s"
        ),
    ]
    month = (result.get("baselines", {}).get("vee_month") or {}).get("vee") or {}
    if month:
        limit = memory_bytes(memory_limit) + TARGETS["rss_headroom"]
        name = "VEE one month: peak RSS vs memory_limit + 1 GB"
        out.append(_target(name, scope, month.get("peak_rss_bytes"), limit, False, "B"))
    return out


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "—"
    if unit == "bool":
        return "yes" if value else "no"
    if unit == "B":
        return f"{value / GB:.2f} GiB"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if unit == "s":
        return f"{value:,.1f} s"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:,.{digits}f}"


def _rows(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(doc: dict[str, Any]) -> str:
    """The benchmark's figures as markdown: machine, stages, ratios, growth, month close, targets."""
    machine, versions, settings = doc["machine"], doc["versions"], doc["settings"]
    results: dict[str, dict[str, Any]] = doc["sizes"]
    lines = [
        f"Run of {doc['started_at']} (finished {doc.get('finished_at', '—')}), commit "
        f"{versions.get('meterflow_commit')} ({versions.get('meterflow_tree')}).",
        "",
        f"Machine: {machine.get('nproc')} cores, {_fmt(machine.get('memory_bytes'), 'B')} memory, "
        f"{machine.get('cpu_model')}; {machine.get('platform')}; Python {machine.get('python')}.",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if not k.startswith("meterflow"))
        + ".",
        f"Settings: DuckDB memory_limit {settings['memory_limit']}, threads {settings['threads']}; "
        f"{_repeats(settings['repeat'])} (median; peak RSS is the highest run).",
        "",
        "### Stages",
        "",
    ]
    stage_rows = []
    for label, result in results.items():
        for stage in STAGES:
            s = result.get("stages", {}).get(stage)
            if not s:
                continue
            name = (
                stage
                + (" (cached)" if s.get("cached") else "")
                + (" (1 run, preparing)" if s.get("preparation") else "")
            )
            stage_rows.append(
                [
                    label,
                    f"{result['customers']:,}",
                    name,
                    _fmt(s.get("seconds"), "s"),
                    _rows(s.get("rows")),
                    _rows(s.get("rows_per_s")),
                    _fmt(s.get("peak_rss_bytes"), "B"),
                    _fmt(s.get("quality_seconds"), "s") if stage in QUALITY_STAGES else "—",
                    _fmt(s.get("quality_share"), "%") if stage in QUALITY_STAGES else "—",
                ]
            )
    lines += _table(
        [
            "size",
            "customers",
            "stage",
            "wall time",
            "rows",
            "rows/s",
            "peak RSS",
            "of which quality",
            "quality share",
        ],
        stage_rows,
    )
    lines += ["", "### Side by side", ""]
    side_rows = []
    for label, result in results.items():
        r = size_ratios(result)
        base = result.get("baselines", {})
        comparison = (base.get("pandas_kpi") or {}).get("comparison") or {}
        month_rss = ((base.get("vee_month") or {}).get("vee") or {}).get("peak_rss_bytes")
        pandas_seconds = (base.get("pandas_kpi") or {}).get("seconds")
        kpi_alone_seconds = (base.get("kpi_alone") or {}).get("seconds")
        side_rows.append(
            [
                label,
                _fmt(r["ingest_vs_bare_copy"], "x"),
                _fmt(r["vee_vs_bare_dedupe_by_month"], "x"),
                _fmt(r["vee_vs_bare_dedupe"], "x"),
                f"{_fmt(r['vee_month_vs_bare_dedupe'], 'x')}, {_fmt(month_rss, 'B')}",
                f"{_fmt(pandas_seconds, 's')} vs {_fmt(r['meterflow_kpi_seconds'], 's')}",
                _fmt((base.get("pandas_kpi") or {}).get("peak_rss_bytes"), "B"),
                _fmt(r["pandas_vs_meterflow"], "x"),
                f"{_fmt(kpi_alone_seconds, 's')}, {_fmt(r['pandas_vs_kpi_alone'], 'x')}",
                "—"
                if not comparison
                else (
                    "yes" if comparison.get("equal") else f"NO ({comparison.get('mismatch_count')} values)"
                ),
                _truth_cell(result.get("truth") or {}),
            ]
        )
    lines += _table(
        [
            "size",
            "ingest rows/s ÷ bare COPY",
            "VEE time ÷ bare dedupe by month",
            "VEE time ÷ bare dedupe (global)",
            "VEE one month: ÷ bare, peak RSS",
            "pandas (KPIs) vs every mart built",
            "pandas peak RSS",
            "pandas ÷ every mart",
            "mart_kpi_monthly alone, pandas ÷ it",
            "same figures",
            "marts = truth",
        ],
        side_rows,
    )
    floor_rows = [
        [
            label,
            stage,
            f"{f['files']:,} {f['kind']} files, {_fmt(f['bytes'], 'B')}, {_rows(f['rows'])} rows",
            _fmt(f["disk_seconds"], "s") + ("" if f.get("direct", True) else " (cached)"),
            _fmt(f["scan_seconds"], "s"),
            _fmt(f["seconds"], "s"),
            _fmt(_seconds(result, stage), "s"),
            _fmt(ratio(_seconds(result, stage), f["seconds"]), "x"),
        ]
        for label, result in results.items()
        for stage, f in (result.get("floors") or {}).items()
    ]
    if floor_rows:
        lines += ["", "### The machine's floor under each stage", ""]
        lines += _table(
            [
                "size",
                "stage",
                "its input",
                "disk read (O_DIRECT)",
                "bare DuckDB scan",
                "floor (the larger)",
                "stage",
                "stage ÷ floor",
            ],
            floor_rows,
        )
    source_rows = [
        [
            label,
            f"{s['meters']:,} x {s['days']} days = {s['values']:,}",
            f"{_fmt(s['csv_seconds'], 's')}, {s['csv_values_per_second']:,.0f}",
            f"{_fmt(s['nem12_seconds'], 's')}, {s['nem12_values_per_second']:,.0f}",
            _fmt(s["ratio"], "x"),
        ]
        for label, result in results.items()
        if (s := (result.get("baselines") or {}).get("sources"))
    ]
    if source_rows:
        lines += ["", "### NEM12 against contract CSV (the same interval values, fastest run of each)", ""]
        lines += _table(
            ["size", "values", "contract CSV: time, values/s", "NEM12: time, values/s", "NEM12 ÷ CSV"],
            source_rows,
        )
    lines += ["", "### Growth with size (time ∝ customers^b)", ""]
    labels = list(results)
    exponents = growth(results)
    growth_rows = []
    for stage in (*STAGES, "close"):
        cells = []
        for label in labels:
            result = results[label]
            s = (
                (result.get("close") or {}).get("close")
                if stage == "close"
                else result.get("stages", {}).get(stage)
            )
            cells.append(_fmt((s or {}).get("seconds"), "s"))
        if any(c != "—" for c in cells):
            growth_rows.append([stage, *cells, _fmt(exponents.get(stage))])
    lines += _table(["stage", *(f"size {lb}" for lb in labels), "b"], growth_rows)
    lines += ["", "### Month close", ""]
    close_rows = []
    for label, result in results.items():
        for key, what in (
            ("close", "full history"),
            ("close_without_operations", "full history, no operations files"),
            ("close_short", "9 months"),
        ):
            c = result.get(key) or {}
            if not c:
                continue
            close_rows.append(
                [
                    label,
                    what,
                    str(c.get("history_months")),
                    _fmt((c.get("setup") or {}).get("seconds"), "s"),
                    _fmt((c.get("close") or {}).get("seconds"), "s"),
                    _fmt((c.get("close") or {}).get("peak_rss_bytes"), "B"),
                ]
            )
    lines += _table(
        [
            "size",
            "case",
            "months before the close",
            "run from scratch on them (1 run)",
            "close",
            "close peak RSS",
        ],
        close_rows,
    )
    lines += ["", "### Targets", ""]
    target_rows = [
        [
            t["target"],
            t["scope"],
            _fmt(t["value"], t["unit"]),
            "yes" if t["unit"] == "bool" else f"{t['sense']} {_fmt(t['limit'], t['unit'])}",
            {True: "met", False: "**missed**", None: "not measured"}[t["met"]],
        ]
        for t in doc.get("targets", [])
    ]
    lines += _table(["target", "where", "value", "target", ""], target_rows)
    errors = [(label, item, msg) for label, r in results.items() for item, msg in r.get("errors", {}).items()]
    if errors:
        lines += ["", "### Not measured", ""]
        lines += [f"- size {label}, {item}: {msg}" for label, item, msg in errors]
    return "\n".join(lines) + "\n"


def _seconds(result: dict[str, Any], stage: str) -> float | None:
    s = (result.get("close") or {}).get("close") if stage == "close" else result.get("stages", {}).get(stage)
    return (s or {}).get("seconds")


def chart(results: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Time of each stage against customers on log-log axes, with a linear reference; None without data."""
    if not results:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    customers = [r["customers"] for r in results.values()]
    anchor = 1.0
    for stage in (*STAGES, "close"):
        points = [(r["customers"], _seconds(r, stage)) for r in results.values() if _seconds(r, stage)]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label="month close" if stage == "close" else stage)
            anchor = max(anchor, 1.5 * ys[0])
    low, high = min(customers), max(customers)
    if high > low:
        # The reference runs above the slowest stage's first point: lines parallel to it grow linearly.
        ax.plot(
            [low, high], [anchor, anchor * high / low], color="grey", linestyle=":", label="linear (slope 1)"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("customers")
    ax.set_ylabel("wall time, s (median)")
    ax.set_title("meterflow: cost of each stage against company size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_json(doc: dict[str, Any], path: Path) -> None:
    write_json_atomic(path, doc, indent=2, default=str)


def replace_marked(text: str, body: str) -> str:
    """`text` with the part between the results markers replaced by `body`. Raises ValueError without them."""
    pattern = re.compile(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), flags=re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no {MARK_START} ... {MARK_END} block to fill")
    return pattern.sub(lambda _m: f"{MARK_START}\n{body.rstrip()}\n{MARK_END}", text, count=1)
