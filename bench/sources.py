"""NEM12 ingest against contract CSV ingest of the same interval values: `python -m bench.sources`.

Writes one NEM12 file (one 200 record per meter, one 300 record of 96 quarter-hour values per day) and
one contract CSV holding the same values (ACTIVE_IMPORT, so without the optional channel column), ingests
each into a fresh data home under a temporary folder, and prints values per second of both and
their ratio (docs/sources.md asks for at least 0.5). A small file of each kind is ingested first, so
that the one-time costs of the process are not measured; each file is then ingested --repeat times into
fresh homes, alternating, and the fastest run of each counts (the machine may be shared).

    python -m bench.sources                      # 300 meters x 31 days = 892,800 values
    python -m bench.sources --meters 50 --days 7
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from etl.ingest.run import ingest
from etl.settings import Settings

INTERVALS = 96


def values(meters: int, days: int, seed: int = 7) -> np.ndarray:
    """kWh per meter, day and quarter hour, three decimals."""
    rng = np.random.default_rng(seed)
    return np.round(rng.gamma(2.0, 0.15, size=(meters, days, INTERVALS)), 3)


def write_nem12(path: Path, kwh: np.ndarray, start: date) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("100,NEM12,202501010000,BENCH,BENCH\n")
        for m in range(kwh.shape[0]):
            out.write(f"200,NMI{m:07d},E1,E1,E1,N1,METER{m},kWh,15,\n")
            for d in range(kwh.shape[1]):
                day = (start + timedelta(days=d)).strftime("%Y%m%d")
                out.write(f"300,{day},{','.join(f'{v:.3f}' for v in kwh[m, d])},A,,,20250101000000,\n")
        out.write("900\n")


def write_contract(path: Path, kwh: np.ndarray, start: date) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("meter_id,interval_start,interval_minutes,kwh,quality\n")
        for m in range(kwh.shape[0]):
            for d in range(kwh.shape[1]):
                day = start + timedelta(days=d)
                for i, v in enumerate(kwh[m, d]):
                    out.write(f"NMI{m:07d}-1,{day}T{i // 4:02d}:{i % 4 * 15:02d}:00,15,{v:.3f},A\n")


def timed_ingest(home: Path, name: str, source: Path) -> tuple[float, int]:
    readings = home / "landing" / "readings"
    readings.mkdir(parents=True)
    (readings / name).write_bytes(source.read_bytes())
    settings = Settings.from_env(home)
    begin = time.perf_counter()
    report = ingest(settings, "bench", folders=["readings"])
    seconds = time.perf_counter() - begin
    (result,) = report.files
    assert result.status == "INGESTED", result
    return seconds, result.rows_accepted


def measure(meters: int, days: int, repeat: int) -> dict[str, float | int]:
    """Ingest the same values as NEM12 and as contract CSV, `repeat` times each, alternating; the fastest
    run of each counts. Returns the values, both times and values per second, and NEM12's ratio."""
    kwh = values(meters, days)
    start = date(2025, 1, 1)
    with tempfile.TemporaryDirectory(prefix="meterflow-bench-sources-") as tmp:
        root = Path(tmp)
        nem, csv = root / "export.nem12.csv", root / "interval_reads.csv"
        write_nem12(nem, kwh, start)
        write_contract(csv, kwh, start)
        # A small file of each kind first: the one-time costs of a process (imports, Arrow's start-up)
        # are not what this measures.
        write_nem12(root / "warm.nem12.csv", kwh[:2, :2], start)
        write_contract(root / "warm.csv", kwh[:2, :2], start)
        timed_ingest(root / "warm_csv", "interval_reads_20250101.csv", root / "warm.csv")
        timed_ingest(root / "warm_nem", "NEM12_export_20250101.csv", root / "warm.nem12.csv")
        csv_runs, nem_runs = [], []
        for k in range(repeat):  # alternating, so that a busy moment of the machine hits both
            csv_runs.append(timed_ingest(root / f"home_csv{k}", "interval_reads_20250101.csv", csv))
            nem_runs.append(timed_ingest(root / f"home_nem{k}", "NEM12_export_20250101.csv", nem))
        (csv_s, csv_n), (nem_s, nem_n) = min(csv_runs), min(nem_runs)
    if not csv_n == nem_n == kwh.size:
        raise RuntimeError(f"accepted values differ: contract CSV {csv_n}, NEM12 {nem_n}, written {kwh.size}")
    return {
        "values": int(kwh.size),
        "csv_seconds": csv_s,
        "nem12_seconds": nem_s,
        "csv_values_per_second": csv_n / csv_s,
        "nem12_values_per_second": nem_n / nem_s,
        "ratio": csv_s / nem_s,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=300)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument(
        "--repeat", type=int, default=3, help="ingests of each file, alternating; the fastest counts"
    )
    args = parser.parse_args(argv)
    m = measure(args.meters, args.days, args.repeat)
    print(f"values: {m['values']:,}, fastest of {args.repeat} runs each")
    print(f"contract CSV: {m['csv_seconds']:.2f} s, {m['csv_values_per_second']:,.0f} values/s")
    print(f"NEM12:        {m['nem12_seconds']:.2f} s, {m['nem12_values_per_second']:,.0f} values/s")
    print(f"NEM12 / contract CSV: {m['ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
