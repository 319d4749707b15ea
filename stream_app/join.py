"""The join: keyed records -> history / pending tables -> decisions -> Redis and outcomes.

Per contact (``environment␟phone``): ``history`` holds its outbound calls, ``pending``
its callbacks waiting out the grace period. Every effect is idempotent under replay:
an outbound call is remembered once per call id, the Redis scripts count a call once,
a call Redis already decided is not made pending again, and outcome records carry
deterministic ids and, on replay, the stored decision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import MutableMapping, Sequence
from typing import Any

from . import metrics
from .counters import ClassifyResult, ClassifyWrite, CounterStore, InboundWrite, retried
from .delivery import Outbox
from .intake import Message
from .matching import OutboundRef, PendingCall, day_bucket, decide, remember
from .outcomes import answered_record, classified_record
from .records import InboundSeen, OutboundSeen, decode_keyed
from .settings import Settings
from .topics import TopicNames

logger = logging.getLogger(__name__)

Table = MutableMapping[str, Any]


class Join:
    """The contacts agent's steps and the grace timer's; Faust feeds it batches."""

    def __init__(self, settings: Settings, names: TopicNames, store: CounterStore,
                 history: Table, pending: Table) -> None:
        self.settings = settings
        self.names = names
        self.store = store
        self.history = history
        self.pending = pending
        self.window = float(settings.recency_window_seconds)
        self.retention = float(settings.recency_window_seconds + settings.allowed_lateness_seconds)
        self.grace = settings.match_grace_seconds
        self.lock = asyncio.Lock()
        self.watermark = 0.0

    async def on_records(self, outbox: Outbox, messages: Sequence[Message]) -> None:
        outbound: dict[str, list[OutboundRef]] = defaultdict(list)
        inbound: list[tuple[str, InboundSeen]] = []
        for message in messages:
            key = (message.key or b"").decode()
            record = decode_keyed(message.value or b"")
            self.watermark = max(self.watermark, record.t)
            if isinstance(record, OutboundSeen):
                outbound[key].append(OutboundRef(record.t, record.agent_id, record.call_id))
            else:
                inbound.append((key, record))
        async with self.lock:
            for key, refs in outbound.items():
                self._remember(key, refs)
            if inbound:
                await self._count_inbound(outbox, inbound)

    def _remember(self, key: str, refs: list[OutboundRef]) -> None:
        history = [OutboundRef(*r) for r in self.history.get(key) or ()]
        for ref in refs:
            history = remember(history, ref, self.retention)
        self.history[key] = history

    async def _count_inbound(self, outbox: Outbox, inbound: list[tuple[str, InboundSeen]]
                             ) -> None:
        zone = self.settings.zone
        writes = [InboundWrite(r.environment_id, r.call_id, r.type, r.t, day_bucket(r.t, zone),
                               r.event_id) for _, r in inbound]
        results = await retried(self.store.record_inbound, writes)
        now = time.time()
        touched: dict[str, dict[str, PendingCall]] = {}
        for (key, r), result in zip(inbound, results, strict=True):
            if result.answered_by_this_event:
                metrics.OUTCOMES.labels("answered").inc()
                await outbox.send(self.names.outcomes, r.environment_id.encode(),
                                  answered_record(r.environment_id, r.call_id,
                                                  r.callback_agent_id, result.day))
            if result.decided:
                continue
            calls = touched.setdefault(key, self._pending(key))
            known = calls.get(r.call_id)
            calls[r.call_id] = (known.updated(result.t) if known else
                                PendingCall(r.environment_id, r.call_id, r.callback_agent_id,
                                            now, result.t))
        for key, calls in touched.items():
            self.pending[key] = [list(_pending_row(p)) for p in calls.values()]

    # -- the grace timer: decide due callbacks, count and publish the outcome -------

    async def decide_due(self, outbox: Outbox) -> None:
        async with self.lock:
            now = time.time()
            waiting = [(key, p) for key in list(self.pending.keys())
                       for p in self._pending(key).values()]
            metrics.PENDING.set(len(waiting))
            due = [(key, p) for key, p in waiting if p.due(now, self.grace)]
            if due:
                await self._decide(outbox, due)

    async def _decide(self, outbox: Outbox, due: list[tuple[str, PendingCall]]) -> None:
        wanted = {(p.environment_id, p.callback_agent_id) for _, p in due}
        sources = await retried(self.store.source_agents, wanted)
        writes = []
        for key, p in due:
            history = [OutboundRef(*r) for r in self.history.get(key) or ()]
            decision = decide(p.t, sources[(p.environment_id, p.callback_agent_id)], history,
                              self.window)
            writes.append(ClassifyWrite(p.environment_id, p.call_id, decision))
        results = await retried(self.store.classify, writes)
        for (_, p), result in zip(due, results, strict=True):
            if result is not None:
                await self._publish_classified(outbox, p, result)
        for key, ids in _group_ids(due).items():
            left = {c: p for c, p in self._pending(key).items() if c not in ids}
            if left:
                self.pending[key] = [list(_pending_row(p)) for p in left.values()]
            else:
                del self.pending[key]

    async def _publish_classified(self, outbox: Outbox, p: PendingCall,
                                  result: ClassifyResult) -> None:
        if result.first_time:
            metrics.OUTCOMES.labels(result.decision.outcome).inc()
        await outbox.send(self.names.outcomes, p.environment_id.encode(),
                          classified_record(p.environment_id, p.call_id, p.callback_agent_id,
                                            result.day, result.decision))

    # -- housekeeping ----------------------------------------------------------------

    async def prune_idle(self) -> None:
        """Forget contacts whose newest outbound call is older than W + lateness."""
        if not self.watermark:
            return
        async with self.lock:
            horizon = self.watermark - self.retention
            for key in list(self.history.keys()):
                rows = self.history.get(key)
                if rows is not None and max(r[0] for r in rows) < horizon:
                    del self.history[key]

    def _pending(self, key: str) -> dict[str, PendingCall]:
        return {row[1]: PendingCall(*row) for row in self.pending.get(key) or ()}


def _pending_row(p: PendingCall) -> tuple[Any, ...]:
    return (p.environment_id, p.call_id, p.callback_agent_id, p.arrived, p.t)


def _group_ids(due: list[tuple[str, PendingCall]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = defaultdict(set)
    for key, p in due:
        grouped[key].add(p.call_id)
    return grouped
