"""Operations data (CONTRACT.md §9): service requests and inspections from landing files to the two
operations marts' figures, on a handful of hand-written rows whose every figure is worked out by hand
below; and the row rules of both datasets."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from etl.duck import connect
from etl.ingest.run import ingest
from etl.models import register_raw, run_model
from etl.settings import Settings

REQUESTS_HEADER = (
    "request_id,customer_id,region_code,request_type,channel,received_at,due_at,status,closed_at,escalated"
)
INSPECTIONS_HEADER = (
    "inspection_id,customer_id,region_code,inspected_on,result,violation_type,recovered_kwh,recovered_vnd"
)


def land(settings: Settings, rel: str, lines: list[str]) -> None:
    path = settings.landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home", memory_limit="1GB", threads=2)
    land(
        settings,
        "operations/service_requests_20250131.csv",
        [
            REQUESTS_HEADER,
            "R0,C0,DH,BILLING,HOTLINE,2024-12-20T09:00:00,2024-12-22T09:00:00,RESOLVED,2025-01-02T10:00:00,false",
            "R1,C1,DH,OUTAGE,APP,2025-01-10T08:00:00,2025-01-12T08:00:00,RESOLVED,2025-01-11T08:00:00,false",
            "R2,,DH,NEW_CONNECTION,WEB,2025-01-30T08:00:00,2025-02-02T08:00:00,OPEN,,false",
            # 17:30 UTC on 31 December is 00:30 on 1 January in Vietnam
            "R5,C5,DH,METER,ZALO,2024-12-31T17:30:00Z,2025-01-05T00:00:00,RESOLVED,2025-01-03T00:00:00+07:00,false",
        ],
    )
    land(
        settings,
        "operations/service_requests_20250228.csv",
        [
            REQUESTS_HEADER,
            "R3,C3,VL,COMPLAINT,COUNTER,2025-02-10T08:00:00,2025-02-11T08:00:00,CANCELLED,2025-02-12T08:00:00,true",
            "R4,C4,VL,BILLING,EMAIL,2025-02-27T08:00:00,2025-03-01T08:00:00,OPEN,,false",
            # the same request again, now resolved, three days late
            "R2,,DH,NEW_CONNECTION,WEB,2025-01-30T08:00:00,2025-02-02T08:00:00,RESOLVED,2025-02-05T08:00:00,false",
        ],
    )
    land(
        settings,
        "operations/inspections_20250131.csv",
        [
            INSPECTIONS_HEADER,
            "I2,C2,VL,2025-01-20,NO_VIOLATION,,,",
            "I4,C4,DH,2025-03-20,VIOLATION,OTHER,50.5,75000.5",
        ],
    )
    land(
        settings,
        "operations/inspections_20250331.csv",
        [
            INSPECTIONS_HEADER,
            "I1,C1,DH,2025-03-15,VIOLATION,BYPASS,100,150000",
            "I3,C3,DH,2025-03-16,NOT_ACCESSIBLE,,,",
            "I4,C4,DH,2025-03-20,VIOLATION,OTHER,60,90000",
        ],
    )
    return settings


def monthly(settings: Settings, model: str) -> dict[tuple[str, str], tuple]:
    """(period, region_code) -> the rest of the row of `model`, built over the ingested raw files."""
    report = ingest(settings, "run-1")
    assert [(f.rows_in, f.rows_quarantined) for f in report.files] == [(2, 0), (3, 0), (4, 0), (3, 0)]
    con = connect(settings)
    try:
        for dataset in ("service_requests", "inspections"):
            register_raw(con, settings, dataset)
        for name in (
            "stg_lake__service_requests",
            "stg_lake__inspections",
            "int_service_requests__current",
            "int_inspections__current",
            "int_operations__calendar",
            model,
        ):
            run_model(con, name)
        rows = con.execute(f"select * from {model} order by period, region_code").fetchall()
    finally:
        con.close()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


N = None


def test_service_requests_monthly_figures(settings: Settings) -> None:
    got = monthly(settings, "int_service__monthly")
    # received, resolved, on time, on-time %, backlog at month end, overdue at month end, escalated,
    # received YTD, on-time % YTD
    two_thirds = pytest.approx(200 / 3)
    assert got == {
        ("2024-12", "ALL"): (1, 0, 0, N, 1, 1, 0, 1, N),
        ("2024-12", "DH"): (1, 0, 0, N, 1, 1, 0, 1, N),  # R0 is past due on 31 December
        ("2024-12", "VL"): (0, 0, 0, N, 0, 0, 0, 0, N),
        ("2025-01", "ALL"): (3, 3, 2, two_thirds, 1, 0, 0, 3, two_thirds),
        # R1, R2 and R5 (received at 00:30 local on 1 January); R0 resolved late, R1 and R5 on time;
        # R2 open at the month end but due only on 2 February
        ("2025-01", "DH"): (3, 3, 2, two_thirds, 1, 0, 0, 3, two_thirds),
        ("2025-01", "VL"): (0, 0, 0, N, 0, 0, 0, 0, N),
        ("2025-02", "ALL"): (2, 1, 0, 0.0, 1, 0, 1, 5, 50.0),
        ("2025-02", "DH"): (0, 1, 0, 0.0, 0, 0, 0, 3, 50.0),  # R2, re-delivered resolved, three days late
        # R3 escalated and cancelled (not resolved); R4 open, due on 1 March: not yet overdue
        ("2025-02", "VL"): (2, 0, 0, N, 1, 0, 1, 2, N),
        ("2025-03", "ALL"): (0, 0, 0, N, 1, 1, 0, 5, 50.0),
        ("2025-03", "DH"): (0, 0, 0, N, 0, 0, 0, 3, 50.0),
        ("2025-03", "VL"): (0, 0, 0, N, 1, 1, 0, 2, N),  # R4 still open and now overdue
    }


def test_inspections_monthly_figures(settings: Settings) -> None:
    got = monthly(settings, "int_inspections__monthly")
    # inspections, violations, hit rate %, recovered kWh, recovered VND, inspections YTD, violations YTD,
    # recovered VND YTD
    zero = Decimal(0)
    assert got == {
        ("2024-12", "ALL"): (0, 0, N, zero, zero, 0, 0, zero),
        ("2024-12", "DH"): (0, 0, N, zero, zero, 0, 0, zero),
        ("2024-12", "VL"): (0, 0, N, zero, zero, 0, 0, zero),
        ("2025-01", "ALL"): (1, 0, 0.0, zero, zero, 1, 0, zero),
        ("2025-01", "DH"): (0, 0, N, zero, zero, 0, 0, zero),
        ("2025-01", "VL"): (1, 0, 0.0, zero, zero, 1, 0, zero),
        ("2025-02", "ALL"): (0, 0, N, zero, zero, 1, 0, zero),
        ("2025-02", "DH"): (0, 0, N, zero, zero, 0, 0, zero),
        ("2025-02", "VL"): (0, 0, N, zero, zero, 1, 0, zero),
        # I1 and I4 (its second delivery: 60 kWh, 90,000 VND) are violations; I3 found nobody home
        ("2025-03", "ALL"): (
            3,
            2,
            pytest.approx(200 / 3),
            Decimal(160),
            Decimal(240000),
            4,
            2,
            Decimal(240000),
        ),
        ("2025-03", "DH"): (
            3,
            2,
            pytest.approx(200 / 3),
            Decimal(160),
            Decimal(240000),
            3,
            2,
            Decimal(240000),
        ),
        ("2025-03", "VL"): (0, 0, N, zero, zero, 1, 0, zero),
    }


def quarantine(settings: Settings, dataset: str) -> list[tuple]:
    folder = settings.lake / "quarantine" / dataset
    return duckdb.sql(
        f"select line_no, rule from read_parquet('{folder}/*.parquet') order by line_no"
    ).fetchall()


def test_operations_rows_that_break_a_rule_are_quarantined(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", memory_limit="1GB", threads=2)
    land(
        settings,
        "operations/service_requests_20250930.csv",
        [
            REQUESTS_HEADER,
            "R1,C1,DH,BILLING,HOTLINE,2025-09-01T08:00:00,2025-09-03T08:00:00,RESOLVED,2025-08-31T10:00:00,false",
            "R2,C2,DH,BILLING,HOTLINE,2025-09-01T08:00:00,2025-09-03T08:00:00,RESOLVED,,false",
            "R3,C3,DH,BILLING,HOTLINE,2025-09-01T08:00:00,2025-09-03T08:00:00,OPEN,2025-09-02T08:00:00,false",
            "R4,C4,DH,BILLING,HOTLINE,2025-09-01T08:00:00,2025-08-03T08:00:00,OPEN,,false",
            "R5,C5,DH,BILLING,HOTLINE,2025-09-01T08:00:00,2025-09-03T08:00:00,OPEN,,yes",
            "R6,,DH,BILLING,HOTLINE,2025-09-01T08:00:00,2025-09-03T08:00:00,CANCELLED,2025-09-01T09:00:00,true",
        ],
    )
    land(
        settings,
        "operations/inspections_20250930.csv",
        [
            INSPECTIONS_HEADER,
            "I1,C1,DH,2025-09-10,NO_VIOLATION,BYPASS,,",
            "I2,C2,DH,2025-09-10,VIOLATION,,,",
            "I3,C3,DH,2025-09-10,VIOLATION,BYPASS,-1,100",
            "I4,C4,DH,2025-09-10,VIOLATION,BYPASS,1,-100",
            "I5,C5,DH,2025-09-10,NOT_ACCESSIBLE,,0,",
            "I6,C6,DH,2025-09-10,VIOLATION,METER_TAMPERING,0,0",
        ],
    )
    report = ingest(settings, "run-1")
    assert [(f.rows_in, f.rows_accepted, f.rows_quarantined) for f in report.files] == [(6, 1, 5), (6, 1, 5)]
    assert quarantine(settings, "service_requests") == [
        (2, "time_order"),  # closed before it was received
        (3, "status_closed"),  # RESOLVED without closed_at
        (4, "status_closed"),  # OPEN with closed_at
        (5, "time_order"),  # due before it was received
        (6, "type"),  # escalated is not true or false
    ]
    assert quarantine(settings, "inspections") == [
        (2, "violation_type"),  # a violation type without a violation
        (3, "violation_type"),  # a violation without its type
        (4, "range"),  # negative recovered kWh
        (5, "range"),  # negative recovered VND
        (6, "violation_only"),  # a recovered amount on a row without a violation
    ]


def operations_figures(settings: Settings) -> dict[str, list[tuple]]:
    """Every operations aggregate as written to the lake, and the saved current state, row by row."""
    from etl.marts.aggregates import OPERATIONS_AGGREGATES
    from etl.marts.operations import CURRENT_MODELS

    out = {}
    for model in OPERATIONS_AGGREGATES:
        path = settings.lake / "aggregates" / model / "data.parquet"
        out[model] = duckdb.sql(f"select * from read_parquet('{path}')").fetchall()
    for model in CURRENT_MODELS:
        files = f"{settings.lake}/aggregates/{model}/period=*/data.parquet"
        out[model] = duckdb.sql(f"select * from read_parquet('{files}') order by all").fetchall()
    return out


def rebuild_operations(settings: Settings, full: bool = False) -> None:
    from etl.marts.aggregates import _write_operations

    con = connect(settings)
    try:
        _write_operations(con, settings, full)
    finally:
        con.close()


def test_current_state_merged_delivery_by_delivery_equals_a_full_rebuild(
    settings: Settings, tmp_path: Path
) -> None:
    later = ("operations/service_requests_20250228.csv", "operations/inspections_20250331.csv")
    aside = tmp_path / "aside"
    aside.mkdir()
    for rel in later:
        (settings.landing / rel).rename(aside / Path(rel).name)
    ingest(settings, "run-1")
    rebuild_operations(settings)
    first = operations_figures(settings)
    for rel in later:
        (aside / Path(rel).name).rename(settings.landing / rel)
    ingest(settings, "run-2")
    rebuild_operations(settings)  # merges the two new files into the saved state

    merged = operations_figures(settings)
    state = {row[0]: row for row in merged["int_service_requests__current"]}
    # R2: its second delivery (resolved on 5 February) is the current state; the others as delivered
    assert sorted(state) == ["R0", "R1", "R2", "R3", "R4", "R5"]
    assert (state["R2"][7], state["R2"][8]) == ("RESOLVED", datetime(2025, 2, 5, 8))
    assert state["R2"][10] == "operations/service_requests_20250228.csv"
    inspections = {row[0]: row for row in merged["int_inspections__current"]}
    assert (inspections["I4"][6], inspections["I4"][7]) == (Decimal(60), Decimal(90000))
    assert len(first["int_service_requests__current"]) == 4 and merged != first
    record = settings.lake / "aggregates" / "int_service_requests__current" / "_files.json"
    # raw files by month received: the first delivery's of December and January, the second's of January
    # (R2 again) and February
    folded = sorted(name.split("/")[0] for name in json.loads(record.read_text()))
    assert folded == ["period=2024-12", "period=2025-01", "period=2025-01", "period=2025-02"]
    # a run without new raw files reads the saved state; a full rebuild reads every raw file: the same
    rebuild_operations(settings)
    assert operations_figures(settings) == merged
    rebuild_operations(settings, full=True)
    assert operations_figures(settings) == merged
    # a raw file folded in and gone since (the second delivery's January rows): rebuilt from what is left,
    # so R2 is open again as first delivered
    gone = next((settings.lake / "raw" / "service_requests" / "period=2025-01").glob("000000004_*.parquet"))
    gone.unlink()
    rebuild_operations(settings)
    state = {row[0]: row for row in operations_figures(settings)["int_service_requests__current"]}
    assert (state["R2"][7], state["R2"][8]) == ("OPEN", None)
    assert sorted(state) == ["R0", "R1", "R2", "R3", "R4", "R5"]
