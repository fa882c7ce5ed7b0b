"""Measuring one run in a fresh child process, and the arithmetic of the figures (medians, exponents)."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from etl.errors import MeterflowError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
FULL_COMPANY_CUSTOMERS = 480_000
PACKAGES = (
    "duckdb",
    "pyarrow",
    "pandas",
    "numpy",
    "great-expectations",
    "apache-airflow",
    "matplotlib",
)


class BenchError(MeterflowError):
    """A benchmark run failed (the child's exit code and task are in the message)."""


@dataclass
class Measurement:
    """One measured run: `seconds` is timed inside the child around the work alone (imports excluded)."""

    task: str
    seconds: float
    process_seconds: float
    peak_rss_bytes: int
    rows: int | None = None
    quality_seconds: float = 0.0
    import_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def say(message: str) -> None:
    """A progress line on stderr, with the wall-clock time (the benchmark takes hours at full size)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def parse_vmhwm(status_text: str) -> int | None:
    """Peak resident set size in bytes from the text of /proc/<pid>/status; None when absent."""
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB\s*$", status_text, flags=re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def own_peak_rss() -> int | None:
    """This process's peak RSS in bytes (VmHWM), or None where /proc is not available."""
    try:
        return parse_vmhwm(Path("/proc/self/status").read_text(encoding="ascii"))
    except OSError:
        return None


def maxrss_bytes(ru_maxrss: int) -> int:
    """`ru_maxrss` in bytes: Linux reports kilobytes, macOS bytes."""
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def run_child(task: str, spec: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Measurement:
    """Run `python -m bench.child <task>` in a fresh process and measure it.

    Peak RSS comes from wait4()'s rusage of that one child (and its own reaped children), so each run's
    figure is its own and not the largest child seen so far. Raises BenchError when the child fails.
    """
    with tempfile.TemporaryDirectory(prefix="meterflow-bench-") as scratch:
        spec_path = Path(scratch) / "spec.json"
        result_path = Path(scratch) / "result.json"
        spec_path.write_text(json.dumps(dict(spec), default=str), encoding="utf-8")
        argv = [sys.executable, "-m", "bench.child", task, str(spec_path), str(result_path)]
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), child_env.get("PYTHONPATH")]))
        start = time.perf_counter()
        # The child's stdout goes to our stderr: stdout carries only the final table.
        proc = subprocess.Popen(argv, cwd=REPO, env=child_env, stdout=sys.stderr.fileno())
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        process_seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(f"bench task {task!r} failed: {_child_error(result_path, proc.returncode)}")
        result = json.loads(result_path.read_text(encoding="utf-8"))
    peak = max(maxrss_bytes(usage.ru_maxrss), int(result.get("vmhwm_bytes") or 0))
    return Measurement(
        task=task,
        seconds=float(result["seconds"]),
        process_seconds=process_seconds,
        peak_rss_bytes=peak,
        rows=result.get("rows"),
        quality_seconds=float(result.get("quality_seconds") or 0.0),
        import_seconds=float(result.get("import_seconds") or 0.0),
        extra=result.get("extra") or {},
    )


def _child_error(result_path: Path, code: int) -> str:
    """The error the child recorded, or its exit code when it died before recording one."""
    try:
        return str(json.loads(result_path.read_text(encoding="utf-8"))["error"])
    except (OSError, ValueError, KeyError):
        return f"exit code {code} (traceback on stderr above)"


def median_or_none(values: Sequence[float | int | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def summarize(runs: Sequence[Measurement]) -> dict[str, Any]:
    """Median wall time, rows/s, quality time and share, and the highest peak RSS of repeated runs."""
    seconds = median_or_none([r.seconds for r in runs])
    rows = runs[0].rows if runs else None
    quality = median_or_none([r.quality_seconds for r in runs])
    return {
        "runs": len(runs),
        "seconds": seconds,
        "seconds_all": [r.seconds for r in runs],
        "process_seconds": median_or_none([r.process_seconds for r in runs]),
        "rows": rows,
        "rows_per_s": rows / seconds if rows and seconds else None,
        # The worst repeat counts for memory: a limit must hold every time, not on the median.
        "peak_rss_bytes": max((r.peak_rss_bytes for r in runs), default=None),
        "quality_seconds": quality,
        "quality_share": quality / seconds if quality and seconds else 0.0 if seconds else None,
        "import_seconds": median_or_none([r.import_seconds for r in runs]),
    }


def fit_exponent(sizes: Sequence[float], costs: Sequence[float]) -> float | None:
    """The exponent b of cost = a x size^b by least squares in log-log; None with fewer than two points."""
    points = [(math.log(s), math.log(c)) for s, c in zip(sizes, costs, strict=True) if s > 0 and c and c > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


def customers_for(size: float) -> int:
    """Customers of a company `size` times the full one (480,000 customers)."""
    return max(1, round(FULL_COMPANY_CUSTOMERS * size))


def parse_sizes(text: str) -> list[float]:
    """`0.1,0.3,1.0` -> [0.1, 0.3, 1.0]. Raises ValueError on a size that is not a positive number."""
    sizes = []
    for part in text.split(","):
        value = float(part.strip())
        if not value > 0 or math.isinf(value):
            raise ValueError(f"size {part.strip()!r} must be a positive number")
        sizes.append(value)
    return sorted(set(sizes))


def size_label(size: float) -> str:
    """A stable folder name for a size: 0.1 -> '0.1', 1 -> '1.0'."""
    return repr(float(size))


def memory_bytes(limit: str) -> int:
    """A DuckDB memory limit such as '4GB' or '512MiB' in bytes. Raises ValueError when unreadable."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)(i?)B?\s*", limit, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read memory limit {limit!r}")
    number, unit, binary = match.groups()
    base = 1024 if binary or not unit else 1000
    return int(float(number) * base ** "BKMGT".index(unit.upper() or "B"))


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, OS and Python of this machine."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        meminfo = Path("/proc/meminfo").read_text(encoding="ascii")
        match = re.search(r"^MemTotal:\s+(\d+)\s+kB", meminfo, flags=re.MULTILINE)
        info["memory_bytes"] = int(match.group(1)) * 1024 if match else None
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.MULTILINE)
        info["cpu_model"] = model.group(1).strip() if model else platform.processor()
    except OSError:
        info["memory_bytes"] = None
        info["cpu_model"] = platform.processor()
    return info


def versions() -> dict[str, str | None]:
    """Installed versions of the packages the figures depend on, and the git commit measured."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["meterflow_commit"] = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    out["meterflow_tree"] = "modified" if dirty else "clean"
    return out


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()
