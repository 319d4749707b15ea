"""The reader's pure parts: the period rules and token lookup."""

from __future__ import annotations

from datetime import date

import pytest

from stream_app.api.reader import environment_for
from stream_app.api.responses import ApiError, Period, resolve_period

TODAY = date(2024, 3, 1)


def days(period: Period) -> int:
    return (period.end - period.start).days + 1


def test_defaults_are_today_minus_30_to_today() -> None:
    period = resolve_period(None, None, TODAY)
    assert (period.start, period.end) == (date(2024, 1, 31), TODAY)
    assert days(period) == 31


@pytest.mark.parametrize(("start", "end", "code"), [
    ("2024-02-30", None, "INVALID_DATE"), ("2024-2-1", None, "INVALID_DATE"),
    ("", None, "INVALID_DATE"), (None, "20240301", "INVALID_DATE"),
    ("2024-03-02", None, "INVALID_DATE_RANGE"),
    ("2023-03-01", "2024-03-01", "DATE_RANGE_TOO_LARGE"),
])
def test_period_errors(start: str | None, end: str | None, code: str) -> None:
    with pytest.raises(ApiError) as info:
        resolve_period(start, end, TODAY)
    assert info.value.code == code and info.value.status == 400


def test_exactly_366_days_and_a_single_day_are_allowed() -> None:
    assert days(resolve_period("2023-03-02", "2024-03-01", TODAY)) == 366
    single = resolve_period("2024-02-29", "2024-02-29", TODAY)
    assert (single.start, single.end) == (date(2024, 2, 29), date(2024, 2, 29))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer  ", "Token abc", "abc",
                                    "Bearer abd", "Bearer ab"])
def test_unauthorised_headers(header: str | None) -> None:
    with pytest.raises(ApiError) as info:
        environment_for(header, {"abc": "env-1"})
    assert (info.value.status, info.value.code) == (401, "UNAUTHORIZED")
    assert "abc" not in info.value.message


def test_known_tokens_name_their_environment() -> None:
    tokens = {"abc": "env-1", "xyz": "env-2"}
    assert environment_for("Bearer abc", tokens) == "env-1"
    assert environment_for("bearer xyz", tokens) == "env-2"
