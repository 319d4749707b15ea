"""The reader's pure parts: the period rules and token lookup."""

from __future__ import annotations

from datetime import date
from urllib.parse import quote, quote_plus, urlencode

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from stream_app.api.reader import date_parameters, environment_for
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


# -- the query grammar: each name at most once, only the two dates -----------------------

NAMES = st.sampled_from(["start_date", "end_date", "start", "START_DATE", "é", "start_date "])
VALUES = st.text(max_size=12)


@given(st.lists(st.tuples(NAMES, VALUES), max_size=5), st.booleans())
def test_date_parameters_follow_the_documented_rules(pairs: list[tuple[str, str]],
                                                      percent: bool) -> None:
    """Against a model of the documented rules: an unknown name or a name given twice is
    400 INVALID_QUERY; otherwise each date as sent (None when absent), whatever the
    encoding or the order."""
    query = urlencode(pairs, quote_via=quote if percent else quote_plus)
    request = make_mocked_request("GET", f"/api/v1/callback-agents/stats?{query}")
    names = [n for n, _ in pairs]
    if any(n not in ("start_date", "end_date") for n in names) \
            or len(names) != len(set(names)):
        with pytest.raises(ApiError) as refused:
            date_parameters(request)
        assert (refused.value.status, refused.value.code) == (400, "INVALID_QUERY")
    else:
        sent = dict(pairs)
        assert date_parameters(request) == (sent.get("start_date"), sent.get("end_date"))


def test_a_date_given_twice_is_refused() -> None:
    """multidict 7 lists a repeated name once in ``keys()``: the first value won before."""
    request = make_mocked_request(
        "GET", "/api/v1/callback-agents/stats?start_date=2026-12-01&start_date=2026-12-02")
    with pytest.raises(ApiError, match="more than once"):
        date_parameters(request)
