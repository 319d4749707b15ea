"""Every key of one environment hashes to one Redis Cluster slot; legacy keys map over."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from stream_app.core.store.layout import (
    agent_prefix,
    call_key,
    config_key,
    counter_keys,
    from_legacy,
    names_keys,
    period_keys,
    range_keys,
    stats_key,
)

ids = st.text(min_size=1, max_size=30)


def keys_of(env: str, call: str, agent: str) -> list[str]:
    return [stats_key(env, "2026-11-30"), stats_key(env, "2026-11"), call_key(env, call),
            *names_keys(env), config_key(env, agent)]


@given(env=ids, call=ids, agent=ids)
def test_every_key_of_an_environment_shares_one_slot(env: str, call: str, agent: str) -> None:
    slots = {key_slot(k.encode()) for k in keys_of(env, call, agent)}
    assert len(slots) == 1


def test_environments_spread_over_slots() -> None:
    slots = {key_slot(stats_key(f"env-{i}", "2026-11-30").encode()) for i in range(100)}
    assert len(slots) > 90


@given(env=ids, rest=ids)
def test_a_legacy_key_maps_to_the_key_of_this_layout(env: str, rest: str) -> None:
    e = f"{len(env)}:{env}"
    assert from_legacy(f"cbs:stats:{e}:{rest}") == stats_key(env, rest)
    assert from_legacy(f"cbs:call:{e}:{rest}") == call_key(env, rest)
    assert from_legacy(f"cbs:config:{e}:{rest}") == config_key(env, rest)
    assert from_legacy(f"cbs:names:{e}") == names_keys(env)[0]
    assert from_legacy(f"cbs:names_at:{e}") == names_keys(env)[1]


def test_keys_that_are_not_legacy_ones_are_left_alone() -> None:
    for key in (stats_key("e", "2026-11-30"), "other:key", "cbs:stats:x", "cbs:stats:9:short",
                "cbs:names:1:ab", "cbs:call:1:e"):
        assert from_legacy(key) is None, key


@given(st.text(min_size=1, max_size=20), st.text(max_size=20),
       st.dates().map(lambda d: d.isoformat()))
def test_the_counters_handed_to_a_script_are_the_day_and_its_month(
        env: str, agent: str, day: str) -> None:
    """What a write script counts on: the environment's hashes (agent "") or the agent's,
    the day's and its month's, all in the environment's one slot."""
    assert counter_keys(env, "", day) == (stats_key(env, day), stats_key(env, day[:7]))
    if agent:
        prefix = agent_prefix(env, agent)
        assert counter_keys(env, agent, day) == (prefix + day, prefix + day[:7])
    assert len({key_slot(k.encode()) for k in counter_keys(env, agent, day)}) == 1


# Which counter hashes a period reads: month roll-ups for whole months, days otherwise.
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
