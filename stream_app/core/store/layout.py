"""The Redis key layout, shared by writer and reader so they cannot disagree on keys.

Layout (``{e}`` is the environment id prefixed with its length, so ids containing
``:`` can never collide; the braces are literal: a Redis Cluster hash tag):

- ``cbs:{e}:stats:{day}``   hash: ``received``, ``answered``, ``unmatched``, ``src:{agent}``
- ``cbs:{e}:stats:{month}`` the same hash rolled up per month (``YYYY-MM``), kept by the
  same scripts, so a long period costs a few keys (:func:`period_keys`)
- ``cbs:{e}:agent:{a}:{day}`` and ``…:{month}``: the same counters of the calls routed
  to callback agent ``a`` (``{a}`` length-prefixed like ``{e}``; a call's callback agent
  is that of its earliest record), kept by the same scripts
- ``cbs:{e}:call:{call}``   hash: the call's once-per-call record (TTL ``dedup_ttl``);
  besides the counting fields it keeps what ``GET /api/v1/callbacks/{id}`` explains
- ``cbs:{e}:version``       integer: bumped by every script call that changed a counter
  or a name of the environment, and published (``SPUBLISH``) on the shard channel
  ``cbs:{e}:changed`` in the same atomic call, so readers drop cached answers and push
  live ones (the channel hashes to the environment's slot like its keys)
- ``cbs:{e}:names``         hash: agent -> name; ``cbs:{e}:names_at`` agent -> its time
- ``cbs:{e}:config:{agent}`` sorted set: role versions ``{u, s, n}`` scored by record
  timestamp (a decision uses the newest ``u`` among those at most its cutoff)

Invariant: every key of one environment has the hash tag ``{e}``, so on a Redis Cluster
they all live in one hash slot: a script may touch any of them together, and the reader
sums any period in one call. One environment is one slot (one master's share of the
load): the tenant sharding. Redis takes the tag up to the first ``}``, so an id holding
``}`` only shortens the tag — still the same for every key of that environment.

The layout before hash tags (``cbs:stats:{e}:{day}`` …) is :data:`LEGACY`; the
``migrate-layout`` command (:mod:`stream_app.core.store.migration`) moves its keys here.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Sequence
from datetime import date, timedelta

PREFIX = "cbs"


def env_part(environment_id: str) -> str:
    return f"{len(environment_id)}:{environment_id}"


def env_tag(environment_id: str) -> str:
    """The start of every key of the environment: ``cbs:{<len>:<id>}:``."""
    return f"{PREFIX}:{{{env_part(environment_id)}}}:"


def stats_key(environment_id: str, day: str) -> str:
    return f"{stats_prefix(environment_id)}{day}"


def stats_prefix(environment_id: str) -> str:
    return f"{env_tag(environment_id)}stats:"


def agent_prefix(environment_id: str, agent_id: str) -> str:
    """The start of callback agent ``agent_id``'s counter hashes (``…{day}``)."""
    return f"{env_tag(environment_id)}agent:{len(agent_id)}:{agent_id}:"


def counter_keys(environment_id: str, agent_id: str, day: str) -> tuple[str, str]:
    """The day hash and the month roll-up that count ``day`` for the environment (agent
    ``""``) or for callback agent ``agent_id``: what the write scripts are handed."""
    prefix = agent_prefix(environment_id, agent_id) if agent_id else stats_prefix(environment_id)
    return f"{prefix}{day}", f"{prefix}{month_of(day)}"


def version_key(environment_id: str) -> str:
    return f"{env_tag(environment_id)}version"


def changes_channel(environment_id: str) -> str:
    """The shard channel the write scripts announce the environment's changes on."""
    return f"{env_tag(environment_id)}changed"


def call_key(environment_id: str, call_id: str) -> str:
    return f"{env_tag(environment_id)}call:{call_id}"


def names_keys(environment_id: str) -> tuple[str, str]:
    tag = env_tag(environment_id)
    return f"{tag}names", f"{tag}names_at"


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


def range_keys(environment_id: str, start: date, end: date) -> tuple[str, ...]:
    """:func:`period_keys` for the days ``start``..``end`` (inclusive), without listing
    every day: what the reader asks for."""
    return prefix_range_keys(stats_prefix(environment_id), start, end)


@functools.lru_cache(maxsize=4096)
def prefix_range_keys(prefix: str, start: date, end: date) -> tuple[str, ...]:
    """The day and month hashes under ``prefix`` (the environment's or one callback
    agent's) summing to ``start``..``end``. Cached: dashboards ask the same few ranges
    again and again (it was a tenth of the reader's time per request)."""
    keys: list[str] = []
    day = start
    while day <= end:
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        if day.day == 1 and last <= end:
            keys.append(f"{prefix}{day.isoformat()[:7]}")
        else:
            keys.extend(f"{prefix}{(day + timedelta(days=i)).isoformat()}"
                        for i in range((min(last, end) - day).days + 1))
        if last >= end:  # also the calendar's last day: date.max + 1 day overflows
            break
        day = last + timedelta(days=1)
    return tuple(keys)


def config_key(environment_id: str, agent_id: str) -> str:
    return f"{env_tag(environment_id)}config:{agent_id}"


def month_of(day: str) -> str:
    return day[:7]


LEGACY = {kind: f"{PREFIX}:{kind}:" for kind in ("stats", "call", "names", "names_at", "config")}
"""The layout before hash tags: ``cbs:<kind>:<e>:<rest>`` (``names``: ``cbs:names:<e>``)."""


def from_legacy(key: str) -> str | None:
    """The key of this layout holding what the legacy ``key`` held; None if ``key`` is
    not a legacy key (a key of this layout, or another application's)."""
    for kind, start in LEGACY.items():
        if not key.startswith(start):
            continue
        rest = key[len(start):]
        length, colon, rest = rest.partition(":")
        if not colon or not length.isdigit() or len(rest) < int(length):
            return None
        env, tail = rest[:int(length)], rest[int(length):]
        if kind in ("names", "names_at"):
            return f"{env_tag(env)}{kind}" if tail == "" else None
        if not tail.startswith(":"):
            return None
        return f"{env_tag(env)}{kind}:{tail[1:]}"
    return None
