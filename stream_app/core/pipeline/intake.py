"""Intake: raw input message -> validated event -> keyed record, or a dead letter.

Validation happens here, before any repartition (faust-streaming #553): nothing that
fails validation ever reaches the keyed topic, and everything validation accepts can
be processed downstream (times are range-checked, sizes bounded). A rejected message
becomes a dead letter with its reason and is never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol, TypeVar

from stream_app.core.domain.events import (
    CallbackAgentConfig,
    InboundCallback,
    OutboundCall,
    Rejection,
    parse,
)
from stream_app.core.domain.matching import epoch
from stream_app.core.domain.published import DEAD_LETTER, TRACE_HEADER, headers, trace_of
from stream_app.core.domain.records import (
    DeadLetter,
    InboundSeen,
    OutboundSeen,
    contact_key,
    encode_keyed,
    origin_header,
)
from stream_app.core.kafka.delivery import Outbox
from stream_app.core.kafka.topics import TopicNames
from stream_app.core.store.counters import ConfigWrite, CounterStore, NameWrite, retried
from stream_app.observe import metrics, tracing

logger = logging.getLogger(__name__)

E = TypeVar("E", OutboundCall, InboundCallback, CallbackAgentConfig)
T = TypeVar("T")


class Message(Protocol):
    """The parts of a Kafka message the intake reads (Faust's ``Message`` has them)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Any
    """The record's headers (pairs or a mapping; None: none)."""


YIELD_EVERY = 100
"""Messages handled between two points where the loop is given back (a batch is up to
1,000 messages; validating them in one go held the loop for a few hundred ms)."""


async def yielding(items: Sequence[T]) -> AsyncIterator[T]:
    """``items``, giving the event loop back every ``YIELD_EVERY`` of them."""
    for i, item in enumerate(items):
        if i and i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        yield item


class Intake:
    """The three intake steps; each takes a batch and writes through an outbox."""

    def __init__(self, names: TopicNames, store: CounterStore,
                 partition_of: Callable[[bytes], int]) -> None:
        self.names = names
        self.store = store
        self.partition_of = partition_of
        """A contact key's keyed partition (``topics.KeyedPartitioner``): where the
        producer's own partitioner would put it, without hashing every record again."""

    async def forward(self, outbox: Outbox, key: bytes, record: OutboundSeen | InboundSeen,
                      message: Message, began: int | None) -> None:
        """Send a validated event to its contact's keyed partition, with the trace
        context of its intake step (``observe/tracing.py``)."""
        trace = tracing.step(f"intake {message.topic}", trace_of(message.headers),
                             where(message, record.environment_id), start=began)
        await outbox.send(self.names.keyed, key, encode_keyed(record),
                          partition=self.partition_of(key), headers=_carried(message, trace))

    async def outbound(self, outbox: Outbox, messages: Sequence[Message]) -> None:
        """Forward each outbound call to its contact; keep each agent's newest name."""
        names: dict[tuple[str, str], NameWrite] = {}
        async for message in yielding(messages):
            began = tracing.now() if tracing.enabled() else None
            call = await self.accept(outbox, OutboundCall, message)
            if call is None:
                continue
            t = epoch(call.occurred_at)
            seen = OutboundSeen(call.environment_id, t, call.agent_id, call.call_id,
                                message.timestamp)
            await self.forward(outbox, contact_key(call.environment_id, call.contact_phone),
                               seen, message, began)
            if call.agent_name:
                named = NameWrite(call.environment_id, call.agent_id, t, call.agent_name)
                key = (call.environment_id, call.agent_id)
                if key not in names or (named.t, named.name) > (names[key].t, names[key].name):
                    names[key] = named
        if names:
            await retried(self.store.set_names, list(names.values()))

    async def inbound(self, outbox: Outbox, messages: Sequence[Message]) -> None:
        """Forward each inbound lifecycle event to its contact."""
        async for message in yielding(messages):
            began = tracing.now() if tracing.enabled() else None
            cb = await self.accept(outbox, InboundCallback, message)
            if cb is None:
                continue
            seen = InboundSeen(cb.environment_id, epoch(cb.occurred_at), cb.type, cb.call_id,
                               cb.callback_agent_id, cb.event_id, message.timestamp)
            await self.forward(outbox, contact_key(cb.environment_id, cb.contact_phone),
                               seen, message, began)

    async def config(self, outbox: Outbox, messages: Sequence[Message]) -> None:
        """Store each callback role version in Redis, with its record timestamp."""
        writes = []
        async for message in yielding(messages):
            cfg = await self.accept(outbox, CallbackAgentConfig, message)
            if cfg is None:
                continue
            sources = None if cfg.source_agent_ids is None else tuple(cfg.source_agent_ids)
            writes.append(ConfigWrite(cfg.environment_id, cfg.agent_id, epoch(cfg.updated_at),
                                      message.timestamp, sources, cfg.name))
        if writes:
            await retried(self.store.add_config_versions, writes)

    async def accept(self, outbox: Outbox, model: type[E], message: Message) -> E | None:
        """The validated event, or None after dead-lettering the message."""
        outbox.count(metrics.child(metrics.EVENTS_CONSUMED, message.topic).inc)
        metrics.observe_record_age(message.topic, message.partition, message.timestamp,
                                   time.time())
        parsed = parse(model, message.value)
        if isinstance(parsed, Rejection):
            await self.dead_letter(outbox, message, parsed)
            return None
        return parsed

    async def dead_letter(self, outbox: Outbox, message: Message, rejection: Rejection) -> None:
        outbox.count(metrics.DEAD_LETTERS.labels(message.topic, rejection.code).inc)
        letter = DeadLetter(rejection.reason, rejection.code, message.topic, message.partition,
                            message.offset, message.timestamp, message.key, message.value)
        key = message.key if message.key is None or len(message.key) <= 64 * 1024 else None
        await outbox.send(self.names.dlq, key, letter.encode(),
                          headers=headers(DEAD_LETTER, trace_of(message.headers)))


def _carried(message: Message, trace: str) -> list[tuple[str, bytes]]:
    """A keyed record's headers: where it came from (the audit), and the trace context
    to carry on (the intake's step, or the input's own with tracing off)."""
    origin = origin_header(message.topic, message.partition, message.offset)
    return [*origin, (TRACE_HEADER, trace.encode())] if trace else origin


def where(message: Message, environment: str) -> dict[str, str | int]:
    """A span's attributes for one input record (OpenTelemetry's messaging names)."""
    return {"messaging.system": "kafka", "messaging.destination.name": message.topic,
            "messaging.destination.partition.id": str(message.partition),
            "messaging.kafka.offset": message.offset, "environment": environment}
