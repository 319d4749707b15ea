"""The audit: was every committed input offset processed?

Invariant checked: every offset the consumer group has committed on an input topic was
either forwarded to the keyed topic (its record carries an ``origin`` header naming the
input record) or dead-lettered (the dead letter names its source topic, partition and
offset). A valid config record is not forwarded but stored in Redis as a role version, so for it
the audit checks that Redis holds that version.

Order of reads matters: committed offsets first, then the keyed and dead-letter topics
to their end. The worker forwards and dead-letters a batch, and waits for the broker to
acknowledge it, before it acks the batch, so everything a commit covers is already in
those topics when the audit reads them.

The audit reads whole topics: O(their size) in time, and a set of processed offsets in
memory. Meant for tests and for operators after an incident.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream_app.core.domain.events import CallbackAgentConfig, parse
from stream_app.core.domain.matching import epoch
from stream_app.core.domain.records import ORIGIN_HEADER, parse_origin
from stream_app.core.kafka.topics import ISOLATION, TopicNames, bootstrap_servers
from stream_app.core.store.counters import CounterStore
from stream_app.core.store.layout import config_key
from stream_app.settings import Settings

Origin = tuple[str, int, int]
FETCH_BYTES = 16 * 1024 * 1024
"""Per-partition fetch size: more than any record batch the broker accepts (a smaller
one can leave the consumer unable to step over a large batch)."""
STALL_SECONDS = 60.0


@dataclass
class TopicAudit:
    """What the audit found for one input topic."""

    topic: str
    committed: int = 0
    forwarded: int = 0
    dead_lettered: int = 0
    applied: int = 0
    missing: list[Origin] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "committed": self.committed, "forwarded": self.forwarded,
                "dead_lettered": self.dead_lettered, "applied": self.applied,
                "missing": len(self.missing), "missing_ranges": missing_ranges(self.missing)}


@dataclass
class AuditReport:
    topics: list[TopicAudit]
    committed_to: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> the group's committed offset the audit read up to."""

    @property
    def missing(self) -> int:
        return sum(len(t.missing) for t in self.topics)

    def as_dict(self) -> dict[str, Any]:
        return {"missing": self.missing, "topics": [t.as_dict() for t in self.topics]}


def missing_ranges(missing: Iterable[Origin]) -> list[str]:
    """Compress offsets into ``topic[partition]@first-last`` ranges."""
    ranges: list[str] = []
    run: list[Origin] = []
    for origin in sorted(missing):
        if run and (origin[:2] != run[-1][:2] or origin[2] != run[-1][2] + 1):
            ranges.append(_range(run))
            run = []
        run.append(origin)
    if run:
        ranges.append(_range(run))
    return ranges


def _range(run: list[Origin]) -> str:
    topic, partition, first = run[0]
    last = run[-1][2]
    return f"{topic}[{partition}]@{first}" + (f"-{last}" if last != first else "")


async def audit(settings: Settings) -> AuditReport:
    """Read committed offsets, then the keyed and dead-letter topics, then the inputs."""
    names = TopicNames.from_settings(settings)
    committed, partitions = await _group_and_layout(settings, names)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings),
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level=ISOLATION,
                                max_partition_fetch_bytes=FETCH_BYTES)
    await consumer.start()
    store = CounterStore.from_settings(settings)
    try:
        forwarded = {parse_origin(v) async for _, headers, _ in _read_all(consumer, names.keyed,
                                                                     partitions)
                     for k, v in headers if k == ORIGIN_HEADER}
        dead = {dead_origin(value) async for _, _, value in _read_all(consumer, names.dlq,
                                                                               partitions)}
        report = []
        for topic in (names.outbound, names.inbound, names.config):
            found = TopicAudit(topic)
            ends = {tp.partition: off for tp, off in committed.items() if tp.topic == topic}
            async for origin, _, value in _read_all(consumer, topic, partitions, ends):
                found.committed += 1
                if origin in forwarded:
                    found.forwarded += 1
                elif origin in dead:
                    found.dead_lettered += 1
                elif topic == names.config and await _config_applied(store, value):
                    found.applied += 1
                else:
                    found.missing.append(origin)
            report.append(found)
        return AuditReport(report, {(tp.topic, tp.partition): offset
                                    for tp, offset in committed.items()})
    finally:
        await consumer.stop()
        await store.close()


async def _group_and_layout(settings: Settings, names: TopicNames
                            ) -> tuple[dict[TopicPartition, int], dict[str, list[int]]]:
    """The group's committed offsets, and the partitions of every topic the audit reads."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
        wanted = [names.keyed, names.dlq, names.outbound, names.inbound, names.config]
        described = await admin.describe_topics(wanted)
    finally:
        await admin.close()
    committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    layout = {d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described}
    return committed, layout


async def _read_all(consumer: AIOKafkaConsumer, topic: str, layout: dict[str, list[int]],
                    ends: dict[int, int] | None = None) -> Any:
    """Yield ``(origin, headers, value)`` of ``topic`` from its start to ``ends``.

    ``ends`` (partition -> offset, exclusive) defaults to the topic's end offsets now;
    a partition missing from ``ends`` is not read.
    """
    tps = [TopicPartition(topic, p) for p in layout.get(topic, [])]
    if ends is None:
        ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    tps = [tp for tp in tps if ends.get(tp.partition, 0) > 0]
    if not tps:
        return
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    remaining = set(tps)
    deadline = time.monotonic() + STALL_SECONDS
    while remaining:
        if time.monotonic() > deadline:
            raise RuntimeError(f"reading {topic} made no progress for {STALL_SECONDS:.0f}s "
                               f"(partitions {sorted(tp.partition for tp in remaining)})")
        batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
        if batch:
            deadline = time.monotonic() + STALL_SECONDS
        for tp, messages in batch.items():
            for m in messages:
                if m.offset < ends[tp.partition]:
                    yield (topic, tp.partition, m.offset), list(m.headers or ()), m.value
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp.partition]:
                remaining.discard(tp)
        await asyncio.sleep(0)


def dead_origin(value: bytes | None) -> Origin:
    letter = orjson.loads(value or b"{}")
    return letter.get("source_topic", ""), letter.get("partition", -1), letter.get("offset", -1)


async def _config_applied(store: CounterStore, value: bytes | None) -> bool:
    """True when Redis holds this role version (by ``updated_at`` and sources)."""
    cfg = parse(CallbackAgentConfig, value)
    if not isinstance(cfg, CallbackAgentConfig):
        return False
    sources = None if cfg.source_agent_ids is None else list(cfg.source_agent_ids)
    members = await store.redis.zrange(config_key(cfg.environment_id, cfg.agent_id), 0, -1)
    return any((v := orjson.loads(str(m)))["u"] == epoch(cfg.updated_at) and v["s"] == sources
               for m in members)
