"""The counter store: the idempotent writes and the stats read, on Redis.

Keys are in :mod:`.redis_layout`, the scripts in :mod:`.redis_scripts`. Exactness: every
increment happens inside a Lua script together with the marker that says it happened
(the call record), so a redelivered event, a replay after a crash or a second worker
racing on the same call changes nothing. Scripts are atomic in Redis; a batch is one
pipelined round trip of script calls.
"""


from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from stream_app.core.matching import ConfigVersion, Decision
from stream_app.core.outages import through_outages
from stream_app.core.redis_layout import (
    call_key,
    config_key,
    names_keys,
    period_keys,
    range_keys,
    stats_prefix,
)
from stream_app.core.redis_scripts import (
    ADD_CONFIG_VERSION,
    CLASSIFY,
    RECORD_INBOUND,
    SET_NAME,
    SUM_DAYS,
)

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
OUTAGES = (ConnectionError, TimeoutError, BusyLoadingError, OSError)
"""Redis errors that mean "Redis is away", retried; any other error is a bug or bad data."""

R = TypeVar("R")


MAX_CONFIG_VERSIONS = 1000
SCRIPT_CHUNK = 200
"""Writes per call of a ``BATCHED`` script: Redis runs one script at a time, so a chunk
bounds how long a reader waits behind a batch (about a millisecond)."""


class InboundWrite(NamedTuple):
    environment_id: str
    call_id: str
    kind: str
    t: float
    day: str
    event_id: str


class InboundResult(NamedTuple):
    """The call's state after the write: its day and time, and whether it is decided."""

    day: str
    t: float
    decided: bool
    answered_by_this_event: bool
    decision_day: str | None
    """The day the decision's outcome records carry (None while undecided)."""
    decision_agent: str | None
    """The callback agent the decision's outcome records carry."""
    newly_answered: bool = False
    """This write made the call answered (true once per call, whatever is replayed)."""


class ClassifyWrite(NamedTuple):
    environment_id: str
    call_id: str
    decision: Decision
    day: str
    callback_agent_id: str


class ClassifyResult(NamedTuple):
    """The stored decision (the first one written wins)."""

    day: str
    decision: Decision
    first_time: bool
    answered: bool
    callback_agent_id: str


class NameWrite(NamedTuple):
    environment_id: str
    agent_id: str
    t: float
    name: str


class ConfigWrite(NamedTuple):
    environment_id: str
    agent_id: str
    updated_at: float
    ts: float
    source_agent_ids: tuple[str, ...] | None
    name: str | None


@dataclass
class Stats:
    """Counters summed over a range of days for one environment."""

    received: int = 0
    answered: int = 0
    unmatched: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def sorted_sources(self) -> list[tuple[str, str | None, int]]:
        """(agent, name, count), count descending then agent ascending, zeros left out."""
        rows = [(a, self.names.get(a), c) for a, c in self.by_source.items() if c > 0]
        return sorted(rows, key=lambda row: (-row[2], row[0]))


class CounterStore:
    """The one narrow door to Redis for the worker and the reader."""

    def __init__(self, redis: Redis, dedup_ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = str(dedup_ttl_seconds)
        self._record = redis.register_script(RECORD_INBOUND)
        self._classify = redis.register_script(CLASSIFY)
        self._set_name = redis.register_script(SET_NAME)
        self._add_config = redis.register_script(ADD_CONFIG_VERSION)
        self._sum_days = redis.register_script(SUM_DAYS)

    @classmethod
    def from_url(cls, url: str, dedup_ttl_seconds: int) -> CounterStore:
        # Bounded: a Redis that stops answering (a half-open connection, a frozen
        # process) fails the call after SOCKET_TIMEOUT instead of holding it forever;
        # the caller retries through the outage.
        return cls(Redis.from_url(url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT,
                                  socket_connect_timeout=CONNECT_TIMEOUT,
                                  health_check_interval=30), dedup_ttl_seconds)

    async def close(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> CounterStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def record_inbound(self, writes: Sequence[InboundWrite]) -> list[InboundResult]:
        calls = [[call_key(w.environment_id, w.call_id), w.kind, repr(w.t), w.day,
                  w.event_id, self.ttl, stats_prefix(w.environment_id)] for w in writes]
        return [InboundResult(day, float(t), outcome != "", bool(mine), od or None, oa or None,
                              bool(newly))
                for day, t, outcome, mine, od, oa, newly in await self._each(self._record,
                                                                               calls)]

    async def classify(self, writes: Sequence[ClassifyWrite]) -> list[ClassifyResult | None]:
        calls = [[call_key(w.environment_id, w.call_id), w.decision.outcome,
                  w.decision.source_agent_id or "", w.decision.source_call_id or "",
                  stats_prefix(w.environment_id), w.day, w.callback_agent_id]
                 for w in writes]
        return [None if not r else
                ClassifyResult(r[0], Decision(r[2] or None, r[3] or None), bool(r[4]),
                               bool(r[5]), r[6])
                for r in await self._each(self._classify, calls)]

    async def _each(self, script: Any, calls: list[list[str]]) -> list[Any]:
        """Run a ``BATCHED`` script over ``calls`` (argument lists), SCRIPT_CHUNK per
        script call, in one pipelined round trip; the results in order."""
        if not calls:
            return []
        # ``async with``: a pipeline that failed (Redis away) gives its connection back
        # instead of being collected unclosed.
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in range(0, len(calls), SCRIPT_CHUNK):
                await script(keys=[], args=[orjson.dumps(calls[i:i + SCRIPT_CHUNK])],
                             client=pipe)
            replies = await pipe.execute()
        return [result for reply in replies for result in orjson.loads(reply)]

    async def set_names(self, writes: Iterable[NameWrite]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for w in writes:
                await self._set_name(keys=list(names_keys(w.environment_id)),
                                     args=[w.agent_id, repr(w.t), w.name], client=pipe)
            await pipe.execute()

    async def add_config_versions(self, writes: Iterable[ConfigWrite]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for w in writes:
                member = orjson.dumps({"u": w.updated_at, "s": w.source_agent_ids,
                                       "n": w.name})
                await self._add_config(keys=[config_key(w.environment_id, w.agent_id)],
                                       args=[repr(w.ts), member, MAX_CONFIG_VERSIONS],
                                       client=pipe)
            await pipe.execute()

    async def config_versions(self, wanted: Iterable[tuple[str, str]]
                              ) -> dict[tuple[str, str], list[ConfigVersion]]:
        """Every stored role version per (environment, callback agent)."""
        keys = sorted(set(wanted))
        async with self.redis.pipeline(transaction=False) as pipe:
            for env, agent in keys:
                pipe.zrange(config_key(env, agent), 0, -1, withscores=True)
            replies = await pipe.execute() if keys else []
        return {k: [_version(member, ts) for member, ts in rows]
                for k, rows in zip(keys, replies, strict=True)}

    async def read_stats(self, environment_id: str, days: Sequence[str]) -> Stats:
        """Sum the day hashes of ``days`` on the server and read the names: one round
        trip with a reply of a few fields (``SUM_DAYS``), whatever the period's length."""
        return await self._sum(environment_id, period_keys(environment_id, days))

    async def read_range(self, environment_id: str, start: date, end: date) -> Stats:
        """:meth:`read_stats` for ``start``..``end`` inclusive."""
        return await self._sum(environment_id, range_keys(environment_id, start, end))

    async def _sum(self, environment_id: str, keys: Sequence[str]) -> Stats:
        sums, names = await self._sum_days(keys=[*keys, names_keys(environment_id)[0]])
        stats = Stats(names=dict(zip(names[::2], names[1::2], strict=True)))
        for name, value in zip(sums[::2], sums[1::2], strict=True):
            _add(stats, name, int(value))
        return stats


def _add(stats: Stats, field_name: str, value: int) -> None:
    if field_name == "received":
        stats.received += value
    elif field_name == "answered":
        stats.answered += value
    elif field_name == "unmatched":
        stats.unmatched += value
    elif field_name.startswith("src:"):
        agent = field_name[4:]
        stats.by_source[agent] = stats.by_source.get(agent, 0) + value


def _version(member: str, ts: float) -> ConfigVersion:
    fields = orjson.loads(member)
    sources = fields["s"]
    return ConfigVersion(fields["u"], ts, None if sources is None else tuple(sources))


async def retried(write: Callable[..., Awaitable[R]], *args: Any) -> R:
    """Retry a Redis batch through an outage until it succeeds: giving up would lose data.

    Safe because every script is idempotent; the agent stalls (and its lag grows) while
    Redis is away, then carries on. Other errors propagate.
    """
    return await through_outages(lambda: write(*args), redis_outage)


def redis_outage(exc: BaseException) -> str | None:
    """``"redis"`` if ``exc`` means Redis is away (not that a command is wrong)."""
    return "redis" if isinstance(exc, OUTAGES) else None
