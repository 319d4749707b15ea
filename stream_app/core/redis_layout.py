"""The Redis key layout, shared by writer and reader so they cannot disagree on keys.

Layout (``{e}`` is the environment id prefixed with its length, so ids containing
``:`` can never collide):

- ``cbs:stats:{e}:{day}``   hash: ``received``, ``answered``, ``unmatched``, ``src:{agent}``
- ``cbs:stats:{e}:{month}`` the same hash rolled up per month (``YYYY-MM``), kept by the
  same scripts, so a long period costs a few keys (:func:`period_keys`)
- ``cbs:call:{e}:{call}``   hash: the call's once-per-call record (TTL ``dedup_ttl``)
- ``cbs:names:{e}``         hash: agent -> name; ``cbs:names_at:{e}`` agent -> its time
- ``cbs:config:{e}:{agent}`` sorted set: role versions ``{u, s, n}`` scored by record
  timestamp (a decision uses the newest ``u`` among those at most its cutoff)
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Sequence
from datetime import date, timedelta

PREFIX = "cbs"


def env_part(environment_id: str) -> str:
    return f"{len(environment_id)}:{environment_id}"


def stats_key(environment_id: str, day: str) -> str:
    return f"{PREFIX}:stats:{env_part(environment_id)}:{day}"


def stats_prefix(environment_id: str) -> str:
    return f"{PREFIX}:stats:{env_part(environment_id)}:"


def call_key(environment_id: str, call_id: str) -> str:
    return f"{PREFIX}:call:{env_part(environment_id)}:{call_id}"


def names_keys(environment_id: str) -> tuple[str, str]:
    e = env_part(environment_id)
    return f"{PREFIX}:names:{e}", f"{PREFIX}:names_at:{e}"


def period_keys(environment_id: str, days: Sequence[str]) -> list[str]:
    """The counter hashes that sum to ``days`` (ISO dates): a month's roll-up where every
    day of that month is asked for, the day hashes otherwise. A 366-day period is at
    most 11 months and 62 days instead of 366 hashes."""
    by_month: dict[str, list[str]] = {}
    for day in sorted(set(days)):
        by_month.setdefault(day[:7], []).append(day)
    keys = []
    for month, wanted in by_month.items():
        year, number = int(month[:4]), int(month[5:7])
        if len(wanted) == calendar.monthrange(year, number)[1]:
            keys.append(stats_key(environment_id, month))
        else:
            keys.extend(stats_key(environment_id, day) for day in wanted)
    return keys


@functools.lru_cache(maxsize=4096)
def range_keys(environment_id: str, start: date, end: date) -> tuple[str, ...]:
    """:func:`period_keys` for the days ``start``..``end`` (inclusive), without listing
    every day: what the reader asks for. Cached: dashboards ask the same few ranges
    again and again (it was a tenth of the reader's time per request)."""
    keys: list[str] = []
    day = start
    while day <= end:
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        if day.day == 1 and last <= end:
            keys.append(stats_key(environment_id, day.isoformat()[:7]))
        else:
            keys.extend(stats_key(environment_id, (day + timedelta(days=i)).isoformat())
                        for i in range((min(last, end) - day).days + 1))
        if last >= end:  # also the calendar's last day: date.max + 1 day overflows
            break
        day = last + timedelta(days=1)
    return tuple(keys)


def config_key(environment_id: str, agent_id: str) -> str:
    return f"{PREFIX}:config:{env_part(environment_id)}:{agent_id}"
