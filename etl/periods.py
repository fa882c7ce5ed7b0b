"""Month arithmetic on 'YYYY-MM' periods, the lake's partition key (local calendar months)."""

from __future__ import annotations

from datetime import datetime


def _index(period: str) -> int:
    """Months since year 0 of a 'YYYY-MM' period. Raises ValueError when it is not one."""
    start = month_start(period)
    return start.year * 12 + start.month - 1


def shift(period: str, months: int) -> str:
    """The period `months` months after `period` (negative goes back)."""
    index = _index(period) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def next_month(period: str) -> str:
    """The period after `period`: '2024-12' -> '2025-01'."""
    return shift(period, 1)


def months_between(first: str, last: str) -> list[str]:
    """Every period from `first` to `last`, both included; just `first` when `last` is not after it."""
    out = [first]
    while out[-1] < last:
        out.append(next_month(out[-1]))
    return out


def month_start(period: str) -> datetime:
    """Midnight of the first day of `period`. Raises ValueError when `period` is not 'YYYY-MM'."""
    return datetime.strptime(period, "%Y-%m")


def month_end(period: str) -> datetime:
    """Midnight of the first day of the next month: the exclusive end of `period`."""
    return month_start(next_month(period))
