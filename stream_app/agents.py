"""Thin Faust glue: validate -> key by contact -> join -> count -> publish.

Every agent takes batches with ``noack_take`` and acks a batch only after its effects
are durable (Redis scripts returned, table writes and records handed to the producer,
which Faust flushes before it commits offsets). A crash therefore replays at most the
unacked tail, and every effect below is idempotent under replay:

- history: an outbound call is remembered once per call id;
- counters: the Redis scripts count a call once, whatever repeats;
- pending: a call Redis already decided is not made pending again;
- outcomes: records carry deterministic ids and, on replay, the stored decision.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
from faust.types import EventT, Message, StreamT
from redis.exceptions import RedisError

from . import metrics
from .app import Wiring
from .counters import (
    ClassifyResult,
    ClassifyWrite,
    ConfigWrite,
    CounterStore,
    InboundWrite,
    NameWrite,
)
from .events import CallbackAgentConfig, InboundCallback, OutboundCall, Rejection, parse
from .matching import OutboundRef, PendingCall, day_bucket, decide, epoch, remember
from .settings import Settings

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.05
REDIS_BACKOFF_MAX_SECONDS = 5.0
SEPARATOR = "\x1f"
OUTCOME_NAMESPACE = uuid.UUID("6f1c1a55-7f0e-4c43-9d3c-9a1e2f1b7c11")

R = TypeVar("R")


def contact_key(environment_id: str, phone: str) -> str:
    return f"{environment_id}{SEPARATOR}{phone}"


def outcome_id(kind: str, environment_id: str, call_id: str) -> str:
    """Deterministic: a republished record keeps its id."""
    return str(uuid.uuid5(OUTCOME_NAMESPACE, SEPARATOR.join((kind, environment_id, call_id))))


class Processor:
    """The per-batch steps; Faust only feeds it batches and ticks."""

    def __init__(self, wiring: Wiring, settings: Settings, store: CounterStore) -> None:
        self.w = wiring
        self.settings = settings
        self.store = store
        self.window = float(settings.recency_window_seconds)
        self.retention = float(settings.recency_window_seconds + settings.allowed_lateness_seconds)
        self.grace = settings.match_grace_seconds
        self.lock = asyncio.Lock()
        self.watermark = 0.0
        self._changelogs_known = False

    # -- intake: raw topic -> validated event -> keyed topic (or dead letter) --------

    async def intake_outbound(self, events: Sequence[EventT]) -> None:
        names: dict[tuple[str, str], NameWrite] = {}
        for event in events:
            call = await self._validated(OutboundCall, event.message)
            if call is None:
                continue
            t = epoch(call.occurred_at)
            value = ["o", call.environment_id, t, call.agent_id, call.call_id]
            await self._forward(call.environment_id, call.contact_phone, value)
            if call.agent_name:
                named = NameWrite(call.environment_id, call.agent_id, t, call.agent_name)
                key = (call.environment_id, call.agent_id)
                if key not in names or (named.t, named.name) > (names[key].t, names[key].name):
                    names[key] = named
        if names:
            await self._redis(self.store.set_names, list(names.values()))

    async def intake_inbound(self, events: Sequence[EventT]) -> None:
        for event in events:
            cb = await self._validated(InboundCallback, event.message)
            if cb is None:
                continue
            value = ["i", cb.environment_id, epoch(cb.occurred_at), cb.type, cb.call_id,
                     cb.callback_agent_id, cb.event_id]
            await self._forward(cb.environment_id, cb.contact_phone, value)

    async def intake_config(self, events: Sequence[EventT]) -> None:
        writes = []
        for event in events:
            cfg = await self._validated(CallbackAgentConfig, event.message)
            if cfg is None:
                continue
            sources = None if cfg.source_agent_ids is None else tuple(cfg.source_agent_ids)
            writes.append(ConfigWrite(cfg.environment_id, cfg.agent_id, epoch(cfg.updated_at),
                                      sources, cfg.name))
        if writes:
            await self._redis(self.store.set_configs, writes)

    async def _validated(self, model: Any, message: Message) -> Any:
        metrics.EVENTS_CONSUMED.labels(message.topic).inc()
        parsed = parse(model, message.value)
        if isinstance(parsed, Rejection):
            await self._dead_letter(message, parsed)
            return None
        return parsed

    async def _forward(self, environment_id: str, phone: str, value: list[Any]) -> None:
        await self._send(self.w.names.keyed, contact_key(environment_id, phone).encode(),
                         orjson.dumps(value))

    async def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Hand a record to Faust's producer, which it flushes before every commit.

        The producer's own ``send`` skips Faust's per-message channel machinery, which
        costs more than the rest of the intake path; partitioning is the same (the
        producer's partitioner on the key), so tables keyed alike stay co-located.
        """
        await self.w.app.producer.send(topic, key, value, None, None, None)

    async def _dead_letter(self, message: Message, rejection: Rejection) -> None:
        metrics.DEAD_LETTERS.labels(message.topic, rejection.code).inc()
        record = {
            "reason": rejection.reason,
            "code": rejection.code,
            "source_topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "timestamp": message.timestamp,
            "key": _text(message.key),
            "value": _text(message.value),
            "key_base64": _b64(message.key),
            "value_base64": _b64(message.value),
        }
        await self._send(self.w.names.dlq, message.key, orjson.dumps(record))

    # -- the join: keyed events -> history / pending tables and Redis counters ------

    async def on_contacts(self, events: Sequence[EventT]) -> None:
        outbound: dict[str, list[OutboundRef]] = defaultdict(list)
        inbound: list[tuple[str, list[Any]]] = []
        for event in events:
            key = event.message.key.decode()
            value = orjson.loads(event.message.value)
            self.watermark = max(self.watermark, value[2])
            if value[0] == "o":
                outbound[key].append(OutboundRef(value[2], value[3], value[4]))
            else:
                inbound.append((key, value))
        await self._know_changelogs()
        async with self.lock:
            for key, refs in outbound.items():
                self._remember(key, refs)
            if inbound:
                await self._count_inbound(inbound)

    def _remember(self, key: str, refs: list[OutboundRef]) -> None:
        history = [OutboundRef(*r) for r in self.w.history.get(key) or ()]
        for ref in refs:
            history = remember(history, ref, self.retention)
        self.w.history[key] = history

    async def _count_inbound(self, inbound: list[tuple[str, list[Any]]]) -> None:
        zone = self.settings.zone
        writes = [InboundWrite(v[1], v[4], v[3], v[2], day_bucket(v[2], zone), v[6])
                  for _, v in inbound]
        results = await self._redis(self.store.record_inbound, writes)
        now = time.time()
        touched: dict[str, dict[str, PendingCall]] = {}
        for (key, v), result in zip(inbound, results, strict=True):
            _, env, _, _, call_id, agent, _ = v
            if result.answered_by_this_event:
                metrics.OUTCOMES.labels("answered").inc()
                await self._publish("answered", env, call_id, agent, result.day, {})
            if result.decided:
                continue
            calls = touched.setdefault(key, self._pending(key))
            known = calls.get(call_id)
            calls[call_id] = (known.updated(result.t) if known else
                              PendingCall(env, call_id, agent, now, result.t))
        for key, calls in touched.items():
            self.w.pending[key] = [list(_pending_row(p)) for p in calls.values()]

    # -- the grace timer: decide due callbacks, count and publish the outcome -------

    async def decide_due(self) -> None:
        if not self._ready():
            return
        await self._know_changelogs()
        async with self.lock:
            now = time.time()
            waiting = [(key, p) for key in list(self.w.pending.keys())
                       for p in self._pending(key).values()]
            metrics.PENDING.set(len(waiting))
            due = [(key, p) for key, p in waiting if p.due(now, self.grace)]
            if due:
                await self._decide(due)

    async def _decide(self, due: list[tuple[str, PendingCall]]) -> None:
        wanted = {(p.environment_id, p.callback_agent_id) for _, p in due}
        sources = await self._redis(self.store.source_agents, wanted)
        writes = []
        for key, p in due:
            history = [OutboundRef(*r) for r in self.w.history.get(key) or ()]
            decision = decide(p.t, sources[(p.environment_id, p.callback_agent_id)], history,
                              self.window)
            writes.append(ClassifyWrite(p.environment_id, p.call_id, decision))
        results = await self._redis(self.store.classify, writes)
        for (_, p), result in zip(due, results, strict=True):
            if result is not None:
                await self._publish_classified(p, result)
        for key, ids in _group_ids(due).items():
            left = {c: p for c, p in self._pending(key).items() if c not in ids}
            if left:
                self.w.pending[key] = [list(_pending_row(p)) for p in left.values()]
            else:
                del self.w.pending[key]

    async def _publish_classified(self, p: PendingCall, result: ClassifyResult) -> None:
        decision = result.decision
        if result.first_time:
            metrics.OUTCOMES.labels(decision.outcome).inc()
        extra: dict[str, Any] = {"outcome": decision.outcome}
        if decision.source_agent_id is not None:
            extra |= {"source_agent_id": decision.source_agent_id,
                      "source_call_id": decision.source_call_id}
        await self._publish("classified", p.environment_id, p.call_id, p.callback_agent_id,
                            result.day, extra)

    async def _publish(self, kind: str, env: str, call_id: str, agent: str, day: str,
                       extra: dict[str, Any]) -> None:
        record = {"id": outcome_id(kind, env, call_id), "kind": kind, "environment_id": env,
                  "call_id": call_id, "callback_agent_id": agent, "day": day, **extra}
        await self._send(self.w.names.outcomes, env.encode(), orjson.dumps(record))

    # -- housekeeping ----------------------------------------------------------------

    async def prune_idle(self) -> None:
        """Forget contacts whose newest outbound call is older than W + lateness."""
        if not self._ready() or not self.watermark:
            return
        await self._know_changelogs()
        async with self.lock:
            horizon = self.watermark - self.retention
            for key in list(self.w.history.keys()):
                rows = self.w.history.get(key)
                if rows is not None and max(r[0] for r in rows) < horizon:
                    del self.w.history[key]

    async def _know_changelogs(self) -> None:
        """Make the producer fetch the changelogs' metadata before the first table write.

        With ``use_partitioner`` Faust picks a changelog partition synchronously from the
        producer's metadata, and crashes with a TypeError when the producer has never
        sent to that (freshly created) topic; ``partitions_for`` waits for it once.
        """
        if self._changelogs_known:
            return
        producer = self.w.app.producer._ensure_producer()  # type: ignore[attr-defined]
        for table in (self.w.history, self.w.pending):
            await producer.partitions_for(table.changelog_topic.get_topic_name())
        self._changelogs_known = True

    def _pending(self, key: str) -> dict[str, PendingCall]:
        return {row[1]: PendingCall(*row) for row in self.w.pending.get(key) or ()}

    def _ready(self) -> bool:
        app = self.w.app
        return not app.rebalancing and not app.in_recovery

    async def _redis(self, write: Callable[..., Awaitable[R]], *args: Any) -> R:
        """Retry a Redis batch until it succeeds: giving up would lose data.

        Safe because every script is idempotent; the agent stalls (and its lag grows)
        while Redis is away, then carries on.
        """
        delay = 0.05
        while True:
            try:
                return await write(*args)
            except (RedisError, OSError) as exc:
                logger.warning("Redis error (%s: %s); retrying in %.2fs", type(exc).__name__,
                               exc, delay)
            metrics.REDIS_RETRIES.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_BACKOFF_MAX_SECONDS)


def register(wiring: Wiring, settings: Settings, store: CounterStore) -> Processor:
    """Attach the agents and timers to the app."""
    app, processor = wiring.app, Processor(wiring, settings, store)

    def batched(step: Callable[[Sequence[EventT]], Awaitable[None]], name: str) -> Any:
        async def agent(stream: StreamT) -> None:
            async for events in stream.noack_take(BATCH_SIZE, within=BATCH_WITHIN_SECONDS):
                try:
                    await step(events)
                except Exception as exc:
                    # A bug, not bad input (bad input is dead-lettered): stop the worker
                    # with the batch unacked, so a restart replays it rather than the
                    # agent restarting past a gap it can never commit.
                    logger.exception("agent %s failed; stopping the worker", name)
                    await app.crash(exc)
                    raise
                for event in events:
                    await stream.ack(event)
        agent.__name__ = agent.__qualname__ = name
        return agent

    app.agent(wiring.outbound, name="intake-outbound", concurrency=1)(
        batched(processor.intake_outbound, "intake_outbound"))
    app.agent(wiring.inbound, name="intake-inbound", concurrency=1)(
        batched(processor.intake_inbound, "intake_inbound"))
    app.agent(wiring.config, name="intake-config", concurrency=1)(
        batched(processor.intake_config, "intake_config"))
    app.agent(wiring.keyed, name="contacts", concurrency=1)(
        batched(processor.on_contacts, "contacts"))
    tick = max(0.05, min(1.0, settings.match_grace_seconds / 4))
    app.timer(tick, name="decide-due")(processor.decide_due)
    app.timer(60.0, name="prune-idle")(processor.prune_idle)
    return processor


def _pending_row(p: PendingCall) -> tuple[Any, ...]:
    return (p.environment_id, p.call_id, p.callback_agent_id, p.arrived, p.t)


def _group_ids(due: list[tuple[str, PendingCall]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = defaultdict(set)
    for key, p in due:
        grouped[key].add(p.call_id)
    return grouped


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")

