"""The ``callback-stats`` topic: the current counters of every environment and day (and
callback agent) a batch changed, so a subscriber materialises the stats without Redis.

Why read back from Redis instead of counting here: the counters of one environment and
day are written by every worker that owns one of its contacts; only Redis holds their
sum. After a batch's scripts returned, the contacts agent reads the day hashes the batch
may have touched (every key its scripts were told, the day a call moved from included)
and publishes each one's value, before the batch is acked. The value is exactly the
stats body's counters for that one day (:func:`stats_value`), so the latest value per
key equals what the stats endpoint answers for that day, and a replay, which leaves the
counters where they were, leaves the same latest value.

Several workers: two of them may read one key in one order and publish in the other, so
the older value would land last. Each published key is read again
:data:`RECHECK_SECONDS` later and published again if it changed since (by the other
worker's write): the last record of every key is then a read made after its last write.
The ``stats-version`` header (the environment's change count when read) orders records
of one environment for a subscriber that wants to keep only the newest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import NamedTuple

import orjson

from stream_app.core.domain import jsonbytes
from stream_app.core.domain.published import STATS, headers
from stream_app.core.kafka.delivery import Outbox
from stream_app.core.store.counters import CounterStore, Stats

RECHECK_SECONDS = 1.0
"""How long after publishing a key it is read again (see the module doc)."""
VERSION_HEADER = "stats-version"
READS_AT_ONCE = 8
"""Reads in flight at once (a backfill's batch touches hundreds of days; each read is
one round trip, and a pool has a bounded number of connections)."""


class StatsKey(NamedTuple):
    """What one ``callback-stats`` record is about."""

    environment_id: str
    day: str
    callback_agent_id: str | None = None
    """None: the whole environment's counters of the day."""

    def encode(self) -> bytes:
        """The record key: a JSON object with sorted keys (the agent's only if set)."""
        fields = {"day": self.day, "environment_id": self.environment_id}
        if self.callback_agent_id is not None:
            fields["callback_agent_id"] = self.callback_agent_id
        return jsonbytes.dumps(fields, option=orjson.OPT_SORT_KEYS)


def stats_value(key: StatsKey, stats: Stats) -> bytes:
    """The record value: the stats body's counters of ``key``'s day (schema
    ``callback-stats.v1``)."""
    value: dict[str, object] = {"environment_id": key.environment_id, "day": key.day}
    if key.callback_agent_id is not None:
        value["callback_agent_id"] = key.callback_agent_id
    value |= {
        "total_callbacks_received": stats.received,
        "callbacks_answered": stats.answered,
        "callbacks_unmatched": stats.unmatched,
        "callbacks_by_source_agent": [{"source_agent_id": agent, "name": name, "count": count}
                                      for agent, name, count in stats.sorted_sources()],
    }
    return jsonbytes.dumps(value)


class Published(NamedTuple):
    value: bytes
    recheck_at: float
    trace: bytes | None


class StatsPublisher:
    """Collects the keys the store's scripts touched and publishes their values."""

    def __init__(self, store: CounterStore, topic: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.topic, self.clock = store, topic, clock
        self.changed: set[StatsKey] = set()
        self.published: dict[StatsKey, Published] = {}
        store.on_counters = self.touched

    def touched(self, environment_id: str, counters: Iterable[tuple[str, str]]) -> None:
        """The store's hook: a script was handed these (callback agent, day) counters
        (agent ``""``: the environment's own)."""
        self.changed.update(StatsKey(environment_id, day, agent or None)
                            for agent, day in counters)

    async def publish(self, outbox: Outbox, traces: Mapping[str, str] | None = None) -> None:
        """Publish every key touched since the last call, with ``traces``' trace context
        of its environment (the join's: the latest call the batch counted or decided)."""
        keys, self.changed = self.changed, set()
        if keys:
            traces = traces or {}
            await self._send(outbox, {k: _encoded(traces.get(k.environment_id))
                                      for k in keys})

    async def recheck(self, outbox: Outbox) -> None:
        """Read again every key published :data:`RECHECK_SECONDS` ago or more; publish
        those whose value changed since."""
        now = self.clock()
        due = {k: p for k, p in self.published.items() if p.recheck_at <= now}
        if due:
            sent = await self._send(outbox, {k: p.trace for k, p in due.items()},
                                    unless={k: p.value for k, p in due.items()})
            for key in due.keys() - sent:  # unchanged: nothing more to check
                del self.published[key]

    async def _send(self, outbox: Outbox, keys: dict[StatsKey, bytes | None],
                    unless: dict[StatsKey, bytes] | None = None) -> set[StatsKey]:
        """Publish each key's current value (unless it is the one in ``unless``); the
        keys sent."""
        sent = set()
        wanted = list(keys)
        read: list[Stats] = []
        for i in range(0, len(wanted), READS_AT_ONCE):  # within the connection pool
            read += await asyncio.gather(*(self._read(k) for k in wanted[i:i + READS_AT_ONCE]))
        recheck_at = self.clock() + RECHECK_SECONDS
        for (key, trace), stats in zip(keys.items(), read, strict=True):
            value = stats_value(key, stats)
            if unless is not None and unless.get(key) == value:
                continue
            await outbox.send(self.topic, key.encode(), value, headers=[
                *headers(STATS, trace), (VERSION_HEADER, str(stats.version).encode())])
            outbox.count(self._remember(key, Published(value, recheck_at, trace)))
            sent.add(key)
        return sent

    def _remember(self, key: StatsKey, published: Published) -> Callable[[], None]:
        """Once delivered (never before: a failed delivery is sent again by the retry),
        the key is due for its recheck."""
        def remember() -> None:
            self.published[key] = published
        return remember

    async def _read(self, key: StatsKey) -> Stats:
        if key.callback_agent_id is None:
            return await self.store.read_stats(key.environment_id, [key.day])
        day = date.fromisoformat(key.day)
        return await self.store.read_range(key.environment_id, day, day, key.callback_agent_id)


def _encoded(trace: str | None) -> bytes | None:
    return trace.encode() if trace else None
