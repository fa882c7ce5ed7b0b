"""The management report: one self-contained HTML file per period, in English or Vietnamese.

etl.report.data reads the figures from the published marts, unrounded; etl.report.labels holds the texts
and rounds numbers the locale's way, for reading only; etl.report.charts draws the charts as inline SVG;
etl.report.html renders the page from template.html.
"""

from __future__ import annotations

import logging
from pathlib import Path

from etl.lake import write_atomic
from etl.report.data import ReportData, check_period, load_report
from etl.report.html import render_html
from etl.report.labels import check_locale, format_number
from etl.settings import Settings
from etl.summary import latest_period

__all__ = ["ReportData", "default_output", "format_number", "load_report", "render_html", "write_report"]

log = logging.getLogger(__name__)


def default_output(settings: Settings, period: str, locale: str) -> Path:
    return settings.docs / "reports" / f"report_{period}_{locale}.html"


def write_report(
    settings: Settings,
    period: str | None = None,
    locale: str = "en",
    out: Path | None = None,
    marts: Path | None = None,
) -> Path:
    """Write the report of `period` (default: the latest) and return its path.

    Raises MeterflowError when the marts are missing or hold no company figures for the period, or when
    the period or locale is malformed.
    """
    check_locale(locale)
    period = check_period(period) if period else latest_period(settings, marts)
    data = load_report(settings, period, marts)
    target = out or default_output(settings, period, locale)
    write_atomic(target, render_html(data, locale))
    log.info("wrote the %s report of %s to %s", locale, period, target)
    return target
