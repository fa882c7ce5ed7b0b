"""`meterflow generate`: a deterministic synthetic PC Quang Tri that drops landing files and keeps the truth.

    generate(home, customers=480_000, start="2024-01", end="2025-09", seed=7, fault_rate=0.01)

writes CONTRACT.md §1-5 files under `<home>/landing/` and, with truth=True, the ground truth under
`<home>/truth/` (outside landing/): KPIs computed independently from the generated data, per-meter
energy, the planted faults, the drop order per month close and the expected row counts per file.
The same arguments always give the same bytes. docs/generator.md describes the company and the faults.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from etl.settings import LOCAL_TZ
from etl.synth.billing import Billing
from etl.synth.calendar import parse_month
from etl.synth.company import Company, build_company
from etl.synth.faults import FaultLog
from etl.synth.intervals import IntervalMeters, IntervalWriter, size_meters
from etl.synth.operations import Operations
from etl.synth.reference import write_reference
from etl.synth.registers import RegisterBook, write_register_reads
from etl.synth.truth import Figures, Truth, write_truth
from etl.synth.writer import Landing
from etl.timezone import check_zone

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
EARLIEST, LATEST = "2020-01", "2030-12"


@dataclass
class GenerateSummary:
    """What generate() wrote."""

    home: Path
    files: int
    rows: dict[str, int] = field(default_factory=dict)  # data rows per dataset
    bytes: int = 0
    truth_dir: Path | None = None
    rejected_files: int = 0
    quarantined_rows: int = 0  # rows ingestion is expected to quarantine

    def __str__(self) -> str:
        truth = f"; truth in {self.truth_dir}" if self.truth_dir else ""
        return f"{self.files} files, {sum(self.rows.values()):,} rows, {self.bytes / 1e6:,.1f} MB{truth}"


def _check(customers: int, start: str, end: str, fault_rate: float) -> None:
    """Raises ValueError on arguments the generator cannot honour."""
    first, last = parse_month(start), parse_month(end)
    if customers < 20:
        raise ValueError(f"customers must be at least 20, got {customers}")
    if not (parse_month(EARLIEST) <= first <= last <= parse_month(LATEST)):
        raise ValueError(f"need {EARLIEST} <= start <= end <= {LATEST}, got {start}..{end}")
    if not 0 <= fault_rate <= 0.2:
        raise ValueError(f"fault_rate must be between 0 and 0.2, got {fault_rate}")


def generate(
    home: Path,
    *,
    customers: int = 480_000,
    start: str = "2024-01",
    end: str = "2025-09",
    seed: int = 7,
    fault_rate: float = 0.01,
    edge_faults: bool = False,
    truth: bool = True,
    progress: Progress | None = None,
    timezone: str = LOCAL_TZ,
    solar_share: float = 0.0,
) -> GenerateSummary:
    """Write the synthetic company's landing files (and truth). Raises ValueError on bad arguments.

    `edge_faults` also plants, with faults on, interval gaps at the start of every month (anchored on the
    previous month's last interval) and gaps next to a negative reading. `timezone` is the company's
    zone (run the pipeline with the same METERFLOW_TIMEZONE); `solar_share` the share of DT meters with
    rooftop solar, which also send ACTIVE_EXPORT readings.

    Existing files of the same names are replaced; other files under landing/ are left alone.
    """
    _check(customers, start, end, fault_rate)
    check_zone(timezone)
    if not 0 <= solar_share <= 1:
        raise ValueError(f"solar_share must be between 0 and 1, got {solar_share}")
    home = Path(home)
    report = progress or (lambda stage, done, total: None)
    company = build_company(customers, parse_month(start), parse_month(end), seed, fault_rate)
    meters = size_meters(company)
    landing = Landing(home)
    faults = FaultLog()
    try:
        books, billing, operations, figures, plans = _write_landing(
            company, meters, landing, faults, report, edge_faults, timezone, solar_share
        )
    finally:
        landing.close()  # every queued file is in place (or the error it hit is raised)
    shutil.rmtree(landing.scratch, ignore_errors=True)
    truth_dir = None
    if truth:
        report("truth", 0, 1)
        truth_dir = home / "truth"
        tables = {
            "kpis_company": books.kpis({"ALL": figures["ALL"]}, plans),
            "kpis_region": books.kpis({k: v for k, v in figures.items() if k != "ALL"}, plans),
            "meter_monthly": books.meter_monthly(),
            "meter_mart": books.meter_mart(),
            "sales_monthly": books.sales(billing.truth),
            "energy_balance": books.energy_balance(billing.truth),
            "service_monthly": operations.service_truth(),
            "service_mix_monthly": operations.service_mix_truth(),
            "inspections_monthly": operations.inspections_truth(),
        }
        tables["balance_calendar"], tables["kpis_calendar"] = books.calendar_balance()
        if company.planted is not None:
            tables["theft_labels"] = company.planted.labels(company)
        write_truth(truth_dir, tables, landing, faults)
        report("truth", 1, 1)
    return _summary(home, landing, truth_dir)


def _write_landing(
    company: Company,
    meters: IntervalMeters,
    landing: Landing,
    faults: FaultLog,
    report: Progress,
    edge_faults: bool = False,
    timezone: str = LOCAL_TZ,
    solar_share: float = 0.0,
) -> tuple[Truth, Billing, Operations, dict[str, dict[int, Figures]], pa.Table]:
    """Reference snapshots, then month by month readings, bills, payments and operations, then the plans."""
    report("reference", 0, 1)
    write_reference(company, meters, landing)
    report("reference", 1, 1)
    book = RegisterBook(company)
    billing = Billing(company, landing, faults)
    intervals = IntervalWriter(company, meters, landing, faults, edge_faults, timezone, solar_share)
    books = Truth(company, meters)
    operations = Operations(company, landing, faults)
    reads, _ = book.month(0)
    write_register_reads(company, 0, reads, landing, faults)
    n = company.n_months
    for mi in range(1, n + 1):
        report("months", mi - 1, n)
        books.meter_months[mi] = intervals.month(mi)
        reads, bills = book.month(mi)
        write_register_reads(company, mi, reads, landing, faults)
        billing.month(mi, bills)
        operations.write(mi)
        log.info("generated %s", company.axis.months[mi])
    report("months", n, n)
    figures = books.figures(billing.truth, billing.paid)
    plans = books.plans(figures)
    books.write_plans(plans, landing)
    return books, billing, operations, figures, plans


def _summary(home: Path, landing: Landing, truth_dir: Path | None) -> GenerateSummary:
    rows: dict[str, int] = {}
    for r in landing.records:
        rows[r.dataset] = rows.get(r.dataset, 0) + r.rows
    return GenerateSummary(
        home=home,
        files=len(landing.records),
        rows=dict(sorted(rows.items())),
        bytes=sum(r.size for r in landing.records),
        truth_dir=truth_dir,
        rejected_files=sum(r.status != "INGESTED" for r in landing.records),
        quarantined_rows=sum(r.quarantined for r in landing.records),
    )
