"""Which counter hashes a period reads: month roll-ups for whole months, days otherwise."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.store.layout import period_keys, range_keys, stats_key


def days_between(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def test_whole_months_are_read_from_their_roll_ups() -> None:
    keys = period_keys("e", days_between(date(2023, 1, 1), date(2023, 12, 31)))
    assert keys == [stats_key("e", f"2023-{m:02d}") for m in range(1, 13)]


def test_a_year_from_mid_month_reads_eleven_months_and_the_partial_days() -> None:
    days = days_between(date(2023, 1, 15), date(2024, 1, 15))
    keys = period_keys("e", days)
    assert len(keys) == 17 + 11 + 15
    assert stats_key("e", "2023-02") in keys and stats_key("e", "2023-01") not in keys
    assert stats_key("e", "2023-01-15") in keys and stats_key("e", "2024-01-15") in keys


def test_a_leap_february_needs_its_29th() -> None:
    assert period_keys("e", days_between(date(2024, 2, 1), date(2024, 2, 28))) == \
        [stats_key("e", f"2024-02-{d:02d}") for d in range(1, 29)]
    assert period_keys("e", days_between(date(2024, 2, 1), date(2024, 2, 29))) == \
        [stats_key("e", "2024-02")]


@given(st.dates(date(2023, 1, 1), date(2025, 12, 31)), st.integers(0, 400))
def test_a_range_reads_the_same_hashes_as_its_list_of_days(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    assert list(range_keys("e", start, end)) == period_keys("e", days_between(start, end))
