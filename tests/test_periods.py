from __future__ import annotations

from datetime import datetime

import pytest

from etl.periods import month_end, month_start, months_between, next_month, shift


def test_next_month_rolls_december_into_january() -> None:
    assert next_month("2024-12") == "2025-01"
    assert next_month("2024-01") == "2024-02"


@pytest.mark.parametrize(
    ("period", "months", "expected"),
    [
        ("2024-03", 0, "2024-03"),
        ("2024-03", -3, "2023-12"),
        ("2024-01", -1, "2023-12"),
        ("2024-11", 14, "2026-01"),
        ("2024-12", -24, "2022-12"),
    ],
)
def test_shift_crosses_years_both_ways(period: str, months: int, expected: str) -> None:
    assert shift(period, months) == expected


def test_months_between_includes_both_ends_across_a_year() -> None:
    assert months_between("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert months_between("2024-05", "2024-05") == ["2024-05"]
    assert months_between("2024-05", "2024-03") == ["2024-05"]


def test_month_bounds_of_a_leap_february() -> None:
    assert month_start("2024-02") == datetime(2024, 2, 1)
    assert month_end("2024-02") == datetime(2024, 3, 1)
    assert (month_end("2024-02") - month_start("2024-02")).days == 29
    assert (month_end("2023-02") - month_start("2023-02")).days == 28


def test_month_end_of_december_is_the_next_new_year() -> None:
    assert month_end("2024-12") == datetime(2025, 1, 1)


@pytest.mark.parametrize("bad", ["2024-13", "2024", "24-01", "2024/01"])
def test_malformed_periods_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        month_start(bad)
    with pytest.raises(ValueError):
        shift(bad, 1)
