"""The Redis key layout, the idempotent write scripts, and the stats read.

Writer and reader share this module so they cannot disagree on keys.

Layout (``{e}`` is the environment id prefixed with its length, so ids containing
``:`` can never collide):

- ``cbs:stats:{e}:{day}``   hash: ``received``, ``answered``, ``unmatched``, ``src:{agent}``
- ``cbs:stats:{e}:{month}`` the same hash rolled up per month (``YYYY-MM``), kept by the
  same scripts, so a long period costs a few keys (:func:`period_keys`)
- ``cbs:call:{e}:{call}``   hash: the call's once-per-call record (TTL ``dedup_ttl``)
- ``cbs:names:{e}``         hash: agent -> name; ``cbs:names_at:{e}`` agent -> its time
- ``cbs:config:{e}:{agent}`` sorted set: role versions ``{u, s, n}`` scored by record
  timestamp (a decision uses the newest ``u`` among those at most its cutoff)

Exactness: every increment happens inside a Lua script together with the marker that
says it happened (the call record), so a redelivered event, a replay after a crash or
a second worker racing on the same call changes nothing. Scripts are atomic in Redis;
a batch is one pipelined round trip of script calls.
"""

from __future__ import annotations

import calendar
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple, TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from stream_app.core.matching import ConfigVersion, Decision
from stream_app.core.outages import through_outages

logger = logging.getLogger(__name__)

PREFIX = "cbs"
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
OUTAGES = (ConnectionError, TimeoutError, BusyLoadingError, OSError)
"""Redis errors that mean "Redis is away", retried; any other error is a bug or bad data."""

R = TypeVar("R")


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


BUMP = """
-- Every counter is kept per day and rolled up per month (``YYYY-MM``), in the same
-- script, so a long period reads months instead of days (``period_keys``). A field a
-- day move brings to zero is deleted (and with its last field the hash): a live run and
-- a replay, which never moves, leave the same keys.
local function bump1(key, f, n)
  if redis.call('HINCRBY', key, f, n) == 0 then redis.call('HDEL', key, f) end
end
local function bump(sp, day, f, n)
  bump1(sp .. day, f, n)
  bump1(sp .. string.sub(day, 1, 7), f, n)
end
"""

BATCHED = """
-- ARGV[1]: a JSON array of writes, each the argument list of one call of ``f``; returns
-- the JSON array of their results, in order. A batch's writes go in a few such calls
-- (SCRIPT_CHUNK each) instead of one script call per write: encoding and parsing a
-- pipeline's commands was most of the worker's CPU for Redis. Strings throughout (cjson
-- keeps 14 significant digits of a number).
local function each(f)
  local out = {}
  for i, w in ipairs(cjson.decode(ARGV[1])) do
    out[i] = f(unpack(w))
  end
  return cjson.encode(out)
end
"""

# The once-per-call rule, atomically (its oracle: CallRecord in tests/oracles.py): count
# received once, answered at most once, and move every counter of the call when its day
# changes.
RECORD_INBOUND = BUMP + BATCHED + """
local function record(key, kind, ts, day, eid, ttl, sp)
  local t = tonumber(ts)
  local h = redis.call('HMGET', key, 'e', 'r', 'd', 'a', 'ab', 'o', 's', 'od', 'oa')
  local es, rs, d, a, ab, o, s = h[1], h[2], h[3], h[4], h[5], h[6], h[7]
  if not es then
    redis.call('HSET', key, 'e', ts, 'd', day)
    bump(sp, day, 'received', 1)
    if kind == 'received' then redis.call('HSET', key, 'r', ts) end
    if kind == 'answered' then
      redis.call('HSET', key, 'a', '1', 'ab', eid)
      bump(sp, day, 'answered', 1)
      ab = eid
    end
    redis.call('EXPIRE', key, ttl)
    return {day, ts, '', ab == eid and 1 or 0, '', '', ab == eid and 1 or 0}
  end
  local old_ts = rs or es
  if t < tonumber(es) then es = ts end
  if kind == 'received' and ((not rs) or t < tonumber(rs)) then rs = ts end
  local new_ts = rs or es
  local new_day = d
  if tonumber(new_ts) ~= tonumber(old_ts) then new_day = day end
  if new_day ~= d then
    local moves = {'received'}
    if a == '1' then table.insert(moves, 'answered') end
    if o == 'unmatched' then table.insert(moves, 'unmatched') end
    if o == 'matched' then table.insert(moves, 'src:' .. s) end
    for _, f in ipairs(moves) do
      bump(sp, d, f, -1)
      bump(sp, new_day, f, 1)
    end
  end
  local newly = 0
  if kind == 'answered' and a ~= '1' then
    redis.call('HSET', key, 'a', '1', 'ab', eid)
    bump(sp, new_day, 'answered', 1)
    ab = eid
    newly = 1
  end
  redis.call('HSET', key, 'e', es, 'd', new_day)
  if rs then redis.call('HSET', key, 'r', rs) end
  redis.call('EXPIRE', key, ttl)
  return {new_day, new_ts, o or '', ab == eid and 1 or 0, h[8] or '', h[9] or '', newly}
end
return each(record)
"""

# The first decision wins; a repeat returns the stored one so republished outcome
# records are identical. Stores the decision's day and callback agent for the records.
CLASSIFY = BUMP + BATCHED + """
local function classify(key, outcome, source, source_call, sp, day, agent)
  local h = redis.call('HMGET', key, 'd', 'o', 's', 'sc', 'od', 'oa', 'a')
  if not h[1] then return false end
  local answered = h[7] == '1' and 1 or 0
  if h[2] and h[2] ~= '' then
    return {h[5] or h[1], h[2], h[3] or '', h[4] or '', 0, answered, h[6] or ''}
  end
  redis.call('HSET', key, 'o', outcome, 's', source, 'sc', source_call, 'od', day,
             'oa', agent)
  if outcome == 'unmatched' then
    bump(sp, h[1], 'unmatched', 1)
  else
    bump(sp, h[1], 'src:' .. source, 1)
  end
  return {day, outcome, source, source_call, 1, answered, agent}
end
return each(classify)
"""

# Newest occurred_at wins (ties: the greater name), whatever the arrival order.
SET_NAME = """
local at = redis.call('HGET', KEYS[2], ARGV[1])
local t = tonumber(ARGV[2])
if at then
  local old = tonumber(at)
  if old > t then return 0 end
  if old == t and (redis.call('HGET', KEYS[1], ARGV[1]) or '') >= ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

SUM_DAYS = """
-- KEYS: the day hashes of a period, then the names hash. Sums on the server, so a
-- 366-day read is one round trip with a reply of a few fields, not 366 hashes.
-- Returns {{field, total, ...}, {agent, name, ...}}; totals as decimal strings.
local sums, order = {}, {}
for i = 1, #KEYS - 1 do
  local h = redis.call('HGETALL', KEYS[i])
  for j = 1, #h, 2 do
    local f = h[j]
    if sums[f] == nil then sums[f] = 0; order[#order + 1] = f end
    sums[f] = sums[f] + tonumber(h[j + 1])
  end
end
local out = {}
for _, f in ipairs(order) do
  out[#out + 1] = f
  out[#out + 1] = string.format('%d', sums[f])
end
return {out, redis.call('HGETALL', KEYS[#KEYS])}
"""

# A config version: a member per distinct version, scored by its record timestamp; at
# most MAX_CONFIG_VERSIONS kept per agent (the oldest by record time go first).
ADD_CONFIG_VERSION = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[3]))
return 1
"""
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
