"""The join: keyed records -> contact state -> decisions in record time -> Redis, outcomes.

Per contact (``environment␟phone``) the ``history`` mapping holds its outbound calls and
``pending`` its callbacks not yet decided; both are plain mappings (Faust tables in the
worker, dicts in the unit tests). Progress records carry the input partitions'
watermarks (``progress.py``); a pending call is decided once the low watermark of its
keyed partition passes its cutoff (its first record timestamp + G), with exactly the
outbound calls and config versions whose record timestamps are at most the cutoff. So
the decision is a function of the topics' contents, whatever order or moment they are
read in, and a replay, a restart or another worker makes the same one.

Retention is in stream time: a partition's newest callback time minus W minus the
allowed lateness. Outbound calls older than that can explain no callback that is not
itself later than the allowed lateness; a callback that late is still classified, with
what is kept, and flagged (metric and ``"late": true``).

Every effect is idempotent under replay: an outbound call is remembered once per call
id, the Redis scripts count a call once and keep its first decision, a call Redis has
decided is never pending again, and outcome records carry deterministic ids and the
stored decision.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import MutableMapping, Sequence
from typing import Any, NamedTuple

from stream_app.core.domain.matching import (
    CallEvent,
    OutboundRef,
    PendingCall,
    day_bucket,
    decide,
    prune,
    remember,
    sources_at,
)
from stream_app.core.domain.outcomes import answered_record, classified_record
from stream_app.core.domain.partitions import AllPartitions, Partitions
from stream_app.core.domain.progress import InputPartition, Watermarks
from stream_app.core.domain.published import ANSWERED, CLASSIFIED, headers, trace_of
from stream_app.core.domain.records import (
    InboundSeen,
    OutboundSeen,
    Progress,
    decode_keyed,
    history_of,
    history_row,
    pending_of,
    pending_row,
)
from stream_app.core.kafka.delivery import Outbox
from stream_app.core.kafka.topics import TopicNames
from stream_app.core.pipeline.intake import Message, yielding
from stream_app.core.store.counters import (
    ClassifyResult,
    ClassifyWrite,
    CounterStore,
    InboundResult,
    InboundWrite,
    retried,
)
from stream_app.observe import metrics, tracing
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

Table = MutableMapping[bytes, Any]
"""Contact key (the keyed record's key bytes) -> encoded row."""


class Inbound(NamedTuple):
    """An inbound event of a batch: its contact, keyed partition and trace context."""

    key: bytes
    partition: int
    record: InboundSeen
    trace: str
    """The input record's ``traceparent`` (empty: none), for the outcomes it causes."""


class DueIndex:
    """Per keyed partition, a heap of (cutoff, contact) over the ``pending`` table.

    Deciding then costs the calls that are due, not a scan of every pending row each
    time progress arrives. The table stays the truth: an entry whose call was decided,
    or whose cutoff moved earlier (a new entry was pushed then), finds nothing due and
    is dropped. Invariant: every pending call has an entry with its current cutoff.
    """

    def __init__(self) -> None:
        self.heaps: dict[int, list[tuple[float, bytes]]] = {}
        self.epoch: int | None = None

    def push(self, partition: int, cutoff: float, key: bytes) -> None:
        heapq.heappush(self.heaps.setdefault(partition, []), (cutoff, key))

    def pop_due(self, partition: int, low: float) -> set[bytes]:
        """The contacts with an entry whose cutoff is below ``low`` (entries removed)."""
        heap = self.heaps.get(partition, [])
        keys = set()
        while heap and heap[0][0] < low:
            keys.add(heapq.heappop(heap)[1])
        return keys

    def size(self) -> int:
        return sum(len(heap) for heap in self.heaps.values())


class Join:
    """The contacts agent's step; Faust (or a test) feeds it batches of keyed records."""

    def __init__(self, settings: Settings, names: TopicNames, store: CounterStore,
                 history: Table, pending: Table, watermarks: Watermarks,
                 partitions: Partitions | None = None) -> None:
        self.partitions = partitions or AllPartitions()
        self.due = DueIndex()
        self.settings = settings
        self.names = names
        self.store = store
        self.history = history
        self.pending = pending
        self.watermarks = watermarks
        self.window = float(settings.recency_window_seconds)
        self.lateness = float(settings.allowed_lateness_seconds)
        self.grace = float(settings.match_grace_seconds)
        self.traces: dict[str, str] = {}
        """Environment -> the trace context of the latest call this batch counted or
        decided there (its stats records carry it); emptied at each batch."""
        self.newest_callback: dict[int, float] = {}
        """Keyed partition -> newest callback event time seen (in memory: after a
        restart it starts lower, which only prunes less)."""

    async def on_records(self, outbox: Outbox, messages: Sequence[Message]) -> None:
        self.traces = {}
        await self._index_pending()
        inbound: list[Inbound] = []
        outbound: dict[bytes, tuple[int, list[OutboundSeen]]] = {}
        moved: set[int] = set()
        async for message in yielding(messages):
            record = decode_keyed(message.value or b"", message.key)
            if isinstance(record, Progress):
                marks = {InputPartition(topic, p): mark for topic, p, mark in record.marks}
                if self.watermarks.advance(message.partition, marks):
                    moved.add(message.partition)
                continue
            key = message.key or b""
            if isinstance(record, OutboundSeen):
                outbound.setdefault(key, (message.partition, []))[1].append(record)
            else:
                trace = trace_of(getattr(message, "headers", None))
                inbound.append(Inbound(key, message.partition, record,
                                       trace.decode() if trace else ""))
        for key, (partition, records) in outbound.items():
            self._remember(key, partition, records)
        if inbound:
            await self._count(outbox, inbound)
        if moved:
            await self.decide_due(outbox, moved)

    def _remember(self, key: bytes, partition: int, records: list[OutboundSeen]) -> None:
        """Add a contact's outbound calls of this batch to its history: one read, one
        write (and one changelog record) per contact and batch."""
        history = self._history(key)
        for r in records:
            history = remember(history, OutboundRef(r.t, r.ts, r.agent_id, r.call_id))
        with self.partitions.writing(partition):
            self.history[key] = history_row(prune(history, self._horizon(partition)))

    def _history(self, key: bytes) -> list[OutboundRef]:
        return history_of(self.history.get(key), key)

    def _pending(self, key: bytes) -> dict[str, PendingCall]:
        return pending_of(self.pending.get(key), key)

    def _horizon(self, partition: int) -> float:
        newest = self.newest_callback.get(partition)
        return float("-inf") if newest is None else newest - self.window - self.lateness

    async def _count(self, outbox: Outbox, inbound: list[Inbound]) -> None:
        """Count each event in Redis at once; park the calls not decided yet."""
        zone = self.settings.zone
        writes = [InboundWrite(r.environment_id, r.call_id, r.type, r.t, day_bucket(r.t, zone),
                               r.event_id, r.ts, r.callback_agent_id) for _, _, r, _ in inbound]
        began = tracing.now() if tracing.enabled() else None
        results = await retried(self.store.record_inbound, writes)
        counted = tracing.now()
        touched: dict[bytes, dict[str, PendingCall]] = {}
        partitions: dict[bytes, int] = {}
        async for (key, partition, r, trace), result in yielding(list(zip(inbound, results,
                                                                   strict=True))):
            if result.newly_answered:  # once per call, whatever is replayed or retried
                metrics.child(metrics.OUTCOMES, "answered").inc()
            self.newest_callback[partition] = max(self.newest_callback.get(partition, r.t), r.t)
            if began is not None:
                trace = _joined(r, partition, trace, began, counted)
            if trace:
                self.traces[r.environment_id] = trace
            if result.decided:
                await self._answered_after_decision(outbox, r, result, trace)
                continue
            calls = touched.get(key)
            if calls is None:
                calls = touched[key] = self._pending(key)
            partitions[key] = partition
            event = CallEvent(r.type, r.t, r.ts, r.callback_agent_id, r.event_id, trace)
            known = calls.get(r.call_id)
            calls[r.call_id] = (known.seen(event) if known else
                                PendingCall(r.environment_id, r.call_id, partition, (event,)))
        for key, calls in touched.items():
            with self.partitions.writing(partitions[key]):
                self.pending[key] = pending_row(calls)
            for call in calls.values():
                self.due.push(call.partition, call.cutoff(self.grace), key)

    async def _answered_after_decision(self, outbox: Outbox, r: InboundSeen,
                                       result: InboundResult, trace: str) -> None:
        if result.answered_by_this_event and result.decision_day and result.decision_agent:
            await outbox.send(self.names.outcomes, r.environment_id.encode(),
                              answered_record(r.environment_id, r.call_id,
                                              result.decision_agent, result.decision_day),
                              headers=headers(ANSWERED, trace.encode()))

    # -- decisions ----------------------------------------------------------------------

    async def _index_pending(self) -> None:
        """(Re)build the due index from the table after a rebalance (or at start), in
        slices that give the loop back (only this agent writes ``pending``, so the table
        does not change meanwhile)."""
        epoch = self.partitions.epoch()
        if self.due.epoch == epoch:
            return
        due = DueIndex()
        for i, (key, row) in enumerate(self.pending.items(), 1):
            for call in pending_of(row, key).values():
                due.push(call.partition, call.cutoff(self.grace), key)
            if i % SCAN_SLICE == 0:
                await asyncio.sleep(0)
        due.epoch = epoch
        self.due = due

    async def decide_due(self, outbox: Outbox, partitions: set[int]) -> None:
        """Decide every pending call of ``partitions`` whose cutoff the watermark passed.

        A backlog coming due at once (thousands of contacts after a catch-up) is read
        and decided ``DECIDE_SLICE`` contacts at a time, with the loop given back after
        each: no step holds the loop long, and only one slice's rows and calls are alive
        at a time (a working set the size of the backlog made Python's full garbage
        collections, which scan every live container, the longest stall of the loop).
        """
        await self._index_pending()
        for partition in partitions:
            low = self.watermarks.low(partition)
            if low is None:
                continue
            keys = list(self.due.pop_due(partition, low))
            for start in range(0, len(keys), DECIDE_SLICE):
                rows = {key: self._pending(key) for key in keys[start:start + DECIDE_SLICE]}
                due = [(key, call) for key, calls in rows.items() for call in calls.values()
                       if call.partition == partition and call.cutoff(self.grace) < low]
                if due:
                    await self._decide(outbox, due, rows)
                await asyncio.sleep(0)
        metrics.PENDING.set(self.due.size())

    async def _decide(self, outbox: Outbox, due: list[tuple[bytes, PendingCall]],
                      rows: dict[bytes, dict[str, PendingCall]]) -> None:
        """Decide ``due`` (from ``rows``, the pending rows of their contacts as read)."""
        wanted = {(p.environment_id, p.first.callback_agent_id) for _, p in due}
        versions = await retried(self.store.config_versions, wanted)
        writes, late = [], []
        for key, p in due:
            cutoff = p.cutoff(self.grace)
            t = p.time(self.grace).t
            sources = sources_at(versions[(p.environment_id, p.first.callback_agent_id)], cutoff)
            decision = decide(t, cutoff, sources, self._history(key),
                              self.window)
            late.append(t < self.newest_callback.get(p.partition, t) - self.lateness)
            writes.append(ClassifyWrite(p.environment_id, p.call_id, decision,
                                        day_bucket(t, self.settings.zone),
                                        p.first.callback_agent_id, cutoff, late[-1]))
        results = await retried(self.store.classify, writes)
        for (_, p), result, is_late in zip(due, results, late, strict=True):
            if result is not None:
                await self._publish(outbox, p, result, is_late)
        # A decided call leaves ``pending`` only once its outcome records are acknowledged:
        # the pending row is what makes a replay publish them again, and its removal can
        # outlive a crash of this batch (the local store keeps it after a kill -9; the
        # changelog record may be sent before the batch's other records).
        await outbox.flush()
        # Only this agent writes ``pending``, so ``rows`` still holds the table's rows
        # unless the partitions changed hands meanwhile (then read them again).
        stale = self.partitions.epoch() != self.due.epoch
        for key, (partition, ids) in _group_ids(due).items():
            row = self._pending(key) if stale else rows[key]
            left = {c: p for c, p in row.items() if c not in ids}
            with self.partitions.writing(partition):
                if left:
                    self.pending[key] = pending_row(left)
                else:
                    self.pending.pop(key, None)

    async def _publish(self, outbox: Outbox, p: PendingCall, result: ClassifyResult,
                       late: bool) -> None:
        if result.first_time:
            metrics.child(metrics.OUTCOMES, result.decision.outcome).inc()
            if late:
                metrics.LATE_CALLBACKS.inc()
        env = p.environment_id
        about = {"environment": env, "call_id": p.call_id, "outcome": result.decision.outcome}
        decided = tracing.step("decide", p.first.trace, about)
        if decided:
            self.traces[env] = decided
        await outbox.send(self.names.outcomes, env.encode(),
                          classified_record(env, p.call_id, result.callback_agent_id,
                                            result.day, result.decision, late),
                          headers=headers(CLASSIFIED, decided.encode()))
        if result.answered:
            answer = next((e for e in p.events if e.type == "answered"), p.first)
            await outbox.send(self.names.outcomes, env.encode(),
                              answered_record(env, p.call_id, result.callback_agent_id,
                                              result.day),
                              headers=headers(ANSWERED, tracing.step(
                                  "decide answered", answer.trace, about).encode()))

    # -- housekeeping ----------------------------------------------------------------

    async def prune_idle(self) -> int:
        """Forget contacts none of whose outbound calls can explain a callback any more.

        Each contact by its own keyed partition's horizon, and only on the partitions this
        worker owns: a key it still holds from a partition another worker took over is
        that worker's to prune. Returns contacts dropped. The scan gives the loop back
        every ``SCAN_SLICE`` contacts; a contact found idle is read again right before its
        removal, with no ``await`` between (the contacts agent may have written it).
        """
        idle = []
        for i, key in enumerate(self.history.keys(), 1):
            if i % SCAN_SLICE == 0:
                await asyncio.sleep(0)
            if self._prunable(key):
                idle.append(key)
        dropped = 0
        for key in idle:  # read afresh: the contacts agent may have written it meanwhile
            if self._prunable(key):
                with self.partitions.writing(self.partitions.of(key)):
                    self.history.pop(key, None)
                dropped += 1
        return dropped

    def _prunable(self, key: bytes) -> bool:
        partition = self.partitions.of(key)
        if not self.partitions.owned(partition) or partition not in self.newest_callback:
            return False
        return not prune(self._history(key), self._horizon(partition))

SCAN_SLICE = 1000
"""Rows read per step of a table scan before the loop is given back."""
DECIDE_SLICE = 200
"""Contacts decided per step before the loop is given back (about 5 ms of work)."""


def _group_ids(due: list[tuple[bytes, PendingCall]]) -> dict[bytes, tuple[int, set[str]]]:
    """contact -> (its keyed partition, the call ids decided)."""
    grouped: dict[bytes, tuple[int, set[str]]] = {}
    for key, p in due:
        grouped.setdefault(key, (p.partition, set()))[1].add(p.call_id)
    return grouped



def _joined(r: InboundSeen, partition: int, parent: str, began: int, counted: int) -> str:
    """The trace steps of one inbound record's join: ``join <type>`` from the batch's
    start, and its child ``redis counters``, timed as the script call that counted it
    (one call for the whole batch). Returns the join step's context."""
    about = {"environment": r.environment_id, "call_id": r.call_id,
             "messaging.destination.partition.id": str(partition)}
    joined = tracing.step(f"join {r.type}", parent, about, start=began)
    tracing.step("redis counters", joined, about, start=began, end=counted)
    return joined
