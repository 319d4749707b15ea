"""The counter store: the idempotent writes and the stats read, on Redis.

Keys are in :mod:`.layout`, the scripts in ``lua/`` (:mod:`.scripts`), what crosses to
them in :mod:`.codecs`. Exactness: every
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
from redis.exceptions import ConnectionError, TimeoutError

from stream_app.core.domain.matching import ConfigVersion, Decision
from stream_app.core.outages import outage_of, through_outages
from stream_app.core.store.batch import ScriptBatch
from stream_app.core.store.client import (
    AnyRedis,
    ScriptCall,
    Scripts,
    connect,
    remap,
)
from stream_app.core.store.codecs import (
    CallRecord,
    ClassifyReply,
    ClassifyWire,
    InboundReply,
    InboundWire,
    NeedReply,
    SumReply,
    decode,
    keyed,
)
from stream_app.core.store.layout import (
    agent_prefix,
    call_key,
    changes_channel,
    config_key,
    names_keys,
    period_keys,
    prefix_range_keys,
    range_keys,
    version_key,
)
from stream_app.core.store.scripts import (
    ADD_CONFIG_VERSION,
    CLASSIFY,
    RECORD_INBOUND,
    SET_NAME,
    SUM_DAYS,
)
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

R = TypeVar("R")


MAX_CONFIG_VERSIONS = 1000
NEED_ROUNDS = 8
"""Calls of a chunk that keeps answering "need" (another writer keeps moving its calls'
days) before giving up with an error: never seen; a bound, not a tuning knob."""



class InboundWrite(NamedTuple):
    environment_id: str
    call_id: str
    kind: str
    t: float
    day: str
    event_id: str
    ts: float | None = None
    """The record's timestamp (default: ``t``): with ``event_id`` it orders the call's
    records, and the earliest names the call's callback agent."""
    callback_agent_id: str = ""
    """Empty: the call is counted for its environment only."""

    def agent_prefix(self) -> str:
        return agent_prefix(self.environment_id, self.callback_agent_id) \
            if self.callback_agent_id else ""


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
    cutoff: float = 0.0
    """The record timestamp up to which records took part (kept for ``explain``)."""
    late: bool = False


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
    version: int = 0
    """The environment's change count when read (see ``layout.version_key``)."""

    def sorted_sources(self) -> list[tuple[str, str | None, int]]:
        """(agent, name, count), count descending then agent ascending, zeros left out."""
        rows = [(a, self.names.get(a), c) for a, c in self.by_source.items() if c > 0]
        return sorted(rows, key=lambda row: (-row[2], row[0]))


class CounterStore:
    """The one narrow door to Redis for the worker and the reader.

    A batch's writes are grouped per environment (one hash slot: see
    :mod:`.layout`) and sent in one pipelined round trip; every script is told
    every key it touches (``KEYS``), so the same calls run on one server and on a Redis
    Cluster.
    """

    def __init__(self, redis: AnyRedis, dedup_ttl_seconds: int, min_replicas: int = 0) -> None:
        self.redis = redis
        self.ttl = str(dedup_ttl_seconds)
        self.scripts = Scripts(redis, min_replicas)
        self.on_counters: Callable[[str, set[tuple[str, str]]], None] | None = None
        """Told, after a write script returned, each environment's (callback agent, day)
        counters the script was handed and so may have changed (agent ``""``: the
        environment's own); ``pipeline/stats_topic.py`` publishes them."""

    @classmethod
    def from_url(cls, url: str, dedup_ttl_seconds: int, cluster: bool = False,
                 min_replicas: int = 0) -> CounterStore:
        return cls(connect(url, cluster), dedup_ttl_seconds, min_replicas)

    @classmethod
    def from_settings(cls, settings: Settings) -> CounterStore:
        return cls.from_url(settings.redis_url, settings.dedup_ttl_seconds,
                            settings.redis_cluster, settings.redis_min_replicas)

    async def close(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> CounterStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def record_inbound(self, writes: Sequence[InboundWrite]) -> list[InboundResult]:
        batch = ScriptBatch(RECORD_INBOUND, {"ttl": self.ttl})
        for w in writes:
            batch.add(w.environment_id, w.call_id, [w.callback_agent_id], [w.day],
                      InboundWire(w.kind, repr(w.t), w.day, w.event_id,
                                  repr(w.t if w.ts is None else w.ts), w.callback_agent_id,
                                  w.agent_prefix()))
        return [_inbound(decode(InboundReply, r)) for r in await self._run(batch)]

    async def classify(self, writes: Sequence[ClassifyWrite]) -> list[ClassifyResult | None]:
        batch = ScriptBatch(CLASSIFY, {})
        for w in writes:
            batch.add(w.environment_id, w.call_id, [w.callback_agent_id], [w.day],
                      ClassifyWire(w.decision.outcome, w.decision.source_agent_id or "",
                                   w.decision.source_call_id or "", w.day,
                                   w.callback_agent_id, repr(w.cutoff), "1" if w.late else "0"))
        return [_classified(decode(ClassifyReply, r)) if r else None
                for r in await self._run(batch)]

    async def _run(self, batch: ScriptBatch) -> list[Any]:
        """Run a batched script over ``batch``: a call per environment and SCRIPT_CHUNK
        writes, in one pipelined round trip; a chunk answering "need" is sent again with
        the counters it named (rare: a call whose counters sit on another day or agent
        than its new event's). The replies (JSON objects) in the order of the writes."""
        results: list[Any] = [None] * batch.size
        chunks = batch.chunks()
        for _ in range(NEED_ROUNDS):
            replies = await self.scripts.run([batch.call(c) for c in chunks])
            again = []
            for chunk, reply in zip(chunks, replies, strict=True):
                decoded = orjson.loads(reply)
                if "need" in decoded:
                    batch.need(chunk.environment_id,
                               [decode(NeedReply, n) for n in decoded["need"]])
                    again.append(chunk)
                    continue
                for position, result in zip(chunk.positions, decoded["results"] or (),
                                            strict=True):
                    results[position] = result
            if not again:
                if self.on_counters is not None:
                    for environment_id in batch.counters:
                        self.on_counters(environment_id, batch.counters[environment_id])
                return results
            chunks = again
        raise RuntimeError(f"{len(chunks)} script call(s) still need other days after "
                           f"{NEED_ROUNDS} rounds")

    async def set_names(self, writes: Iterable[NameWrite]) -> None:
        calls = []
        for w in writes:
            names, names_at = names_keys(w.environment_id)
            calls.append(ScriptCall(SET_NAME, *keyed(
                {"names": names, "names_at": names_at, "version": version_key(w.environment_id)},
                agent=w.agent_id, t=repr(w.t), name=w.name,
                channel=changes_channel(w.environment_id))))
        await self.scripts.run(calls)

    async def add_config_versions(self, writes: Iterable[ConfigWrite]) -> None:
        calls = []
        for w in writes:
            member = orjson.dumps({"u": w.updated_at, "s": w.source_agent_ids,
                                   "n": w.name}).decode()
            calls.append(ScriptCall(ADD_CONFIG_VERSION, *keyed(
                {"versions": config_key(w.environment_id, w.agent_id)},
                ts=repr(w.ts), member=member, keep=MAX_CONFIG_VERSIONS)))
        await self.scripts.run(calls)

    async def config_versions(self, wanted: Iterable[tuple[str, str]]
                              ) -> dict[tuple[str, str], list[ConfigVersion]]:
        """Every stored role version per (environment, callback agent)."""
        keys = sorted(set(wanted))
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for env, agent in keys:
                    pipe.zrange(config_key(env, agent), 0, -1, withscores=True)
                replies = await pipe.execute() if keys else []
        except (ConnectionError, TimeoutError):
            await remap(self.redis)  # a pipeline keeps a dead master otherwise
            raise
        return {k: [_version(member, ts) for member, ts in rows]
                for k, rows in zip(keys, replies, strict=True)}

    async def read_stats(self, environment_id: str, days: Sequence[str]) -> Stats:
        """Sum the day hashes of ``days`` on the server and read the names: one round
        trip with a reply of a few fields (``SUM_DAYS``), whatever the period's length."""
        return await self._sum(environment_id, period_keys(environment_id, days))

    async def read_range(self, environment_id: str, start: date, end: date,
                         callback_agent_id: str | None = None) -> Stats:
        """:meth:`read_stats` for ``start``..``end`` inclusive; only the calls routed to
        ``callback_agent_id`` if given (an agent never seen: zeros)."""
        if callback_agent_id is None:
            return await self._sum(environment_id, range_keys(environment_id, start, end))
        prefix = agent_prefix(environment_id, callback_agent_id)
        return await self._sum(environment_id, prefix_range_keys(prefix, start, end))

    async def _sum(self, environment_id: str, hashes: Sequence[str]) -> Stats:
        names, version = names_keys(environment_id)[0], version_key(environment_id)
        keys, args = keyed({"names": names, "version": version}, hashes, hashes=len(hashes))
        reply = decode(SumReply, orjson.loads(await self.scripts.read(
            ScriptCall(SUM_DAYS, keys, args))))
        stats = Stats(names=reply.names or {}, version=int(reply.version))
        for name, value in (reply.sums or {}).items():
            _add(stats, name, int(value))
        return stats

    async def call_record(self, environment_id: str, call_id: str) -> CallRecord | None:
        """The stored record of one call (None: unknown or expired), for ``explain``."""
        raw = await self.redis.hgetall(call_key(environment_id, call_id))
        return CallRecord.from_hash({_text(k): _text(v) for k, v in raw.items()})


def _inbound(r: InboundReply) -> InboundResult:
    return InboundResult(r.day, float(r.t), r.decided, r.answered_by_this_event,
                         r.decision_day or None, r.decision_agent or None, r.newly_answered)


def _classified(r: ClassifyReply) -> ClassifyResult:
    return ClassifyResult(r.day, Decision(r.source or None, r.source_call or None),
                          r.first_time, r.answered, r.agent)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
    return await through_outages(lambda: write(*args), outage_of)
