"""The intake: valid events keyed by (environment, contact) to their partition, agent
names kept newest-first, role versions stored, everything else dead-lettered with its
reason, and counted only once the batch is durable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from stream_app.core.domain.records import (
    ORIGIN_HEADER,
    InboundSeen,
    OutboundSeen,
    contact_key,
    decode_keyed,
    parse_origin,
)
from stream_app.core.kafka.topics import KeyedPartitioner, TopicNames
from stream_app.core.pipeline.intake import Intake
from stream_app.core.store.counters import ConfigWrite, NameWrite
from stream_app.observe import metrics
from stream_app.settings import Settings

NAMES = TopicNames.from_settings(Settings())
PARTITIONS = 6


@dataclass
class Msg:
    value: bytes | None
    topic: str = NAMES.outbound
    partition: int = 0
    offset: int = 0
    timestamp: float = 1_700_000_000.0
    key: bytes | None = None
    headers: Any = None


@dataclass
class Outbox:
    sent: list[tuple[str, bytes | None, bytes, int | None, Any]] = field(default_factory=list)
    counted: list[Any] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partition: int | None = None, headers: Any = None) -> None:
        self.sent.append((topic, key, value, partition, headers))

    def count(self, increment: Any) -> None:
        self.counted.append(increment)

    def deliver(self) -> None:
        for increment in self.counted:
            increment()


@dataclass
class Store:
    names: list[NameWrite] = field(default_factory=list)
    configs: list[ConfigWrite] = field(default_factory=list)

    async def set_names(self, writes: list[NameWrite]) -> None:
        self.names.extend(writes)

    async def add_config_versions(self, writes: list[ConfigWrite]) -> None:
        self.configs.extend(writes)


def outbound(call: str, agent: str, at: str, name: str | None = None,
             phone: str = "+5511900000000") -> bytes:
    body = {"event_id": f"e-{call}", "call_id": call, "environment_id": "env", "agent_id": agent,
            "contact_phone": phone, "occurred_at": at}
    if name is not None:
        body["agent_name"] = name
    return orjson.dumps(body)


def intake(store: Store) -> Intake:
    return Intake(NAMES, store, KeyedPartitioner(PARTITIONS))  # type: ignore[arg-type]


async def test_an_outbound_call_goes_to_its_contacts_partition_with_its_origin() -> None:
    store, outbox = Store(), Outbox()
    message = Msg(outbound("c1", "a1", "2026-11-30T10:00:00Z"), offset=41)
    await intake(store).outbound(outbox, [message])  # type: ignore[arg-type]
    [(topic, key, value, partition, headers)] = outbox.sent
    assert topic == NAMES.keyed and key == contact_key("env", "+5511900000000")
    assert partition == KeyedPartitioner(PARTITIONS)(key)
    seen = decode_keyed(value)
    assert isinstance(seen, OutboundSeen) and seen.call_id == "c1" and seen.agent_id == "a1"
    assert seen.ts == message.timestamp
    origin = dict(headers)[ORIGIN_HEADER]
    assert parse_origin(origin) == (NAMES.outbound, 0, 41)


async def test_the_newest_name_of_each_agent_is_kept_once_per_batch() -> None:
    store, outbox = Store(), Outbox()
    batch = [Msg(outbound("c1", "a1", "2026-11-30T10:00:00Z", "Old")),
             Msg(outbound("c2", "a1", "2026-11-30T11:00:00Z", "New")),
             Msg(outbound("c3", "a1", "2026-11-30T09:00:00Z", "Older"))]
    await intake(store).outbound(outbox, batch)  # type: ignore[arg-type]
    assert [(w.agent_id, w.name) for w in store.names] == [("a1", "New")]


async def test_bad_input_is_dead_lettered_with_its_reason_and_counted_once_durable() -> None:
    store, outbox = Store(), Outbox()
    dlq = metrics.DEAD_LETTERS.labels(NAMES.outbound, "not_json")
    before = dlq._value.get()
    await intake(store).outbound(outbox, [Msg(b"{not json", offset=7)])  # type: ignore[arg-type]
    [(topic, _key, value, _partition, _headers)] = outbox.sent
    letter = orjson.loads(value)
    assert topic == NAMES.dlq and letter["source_topic"] == NAMES.outbound
    assert letter["offset"] == 7 and letter["reason"]
    assert dlq._value.get() == before, "not counted before the batch is durable"
    outbox.deliver()
    assert dlq._value.get() == before + 1


async def test_an_inbound_event_keeps_its_type_and_callback_agent() -> None:
    store, outbox = Store(), Outbox()
    body = orjson.dumps({"event_id": "e1", "call_id": "cb1", "environment_id": "env",
                         "type": "answered", "callback_agent_id": "cba",
                         "contact_phone": "+5511900000000",
                         "occurred_at": "2026-11-30T10:00:00+01:00"})
    await intake(store).inbound(outbox, [Msg(body, topic=NAMES.inbound)])  # type: ignore[arg-type]
    seen = decode_keyed(outbox.sent[0][2])
    assert isinstance(seen, InboundSeen) and seen.type == "answered"
    assert seen.callback_agent_id == "cba" and seen.t == 1_796_029_200.0


async def test_a_role_version_is_stored_with_its_record_timestamp() -> None:
    store, outbox = Store(), Outbox()
    body = orjson.dumps({"agent_id": "cba", "environment_id": "env", "name": "Callbacks",
                         "source_agent_ids": ["a1"], "updated_at": "2026-11-30T10:00:00Z"})
    await intake(store).config(outbox, [Msg(body, topic=NAMES.config, timestamp=5.0)])  # type: ignore[arg-type]
    [write] = store.configs
    assert write.agent_id == "cba" and write.source_agent_ids == ("a1",) and write.ts == 5.0
    assert outbox.sent == [], "nothing goes to the keyed topic"


TRACE = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_an_inputs_trace_context_goes_with_its_keyed_record() -> None:
    store, outbox = Store(), Outbox()
    await intake(store).outbound(outbox, [Msg(outbound("c1", "a1", "2026-11-30T10:00:00Z"),
                                              headers=[("traceparent", TRACE)])])  # type: ignore[arg-type]
    [(_, _, _, _, headers)] = outbox.sent
    assert dict(headers)["traceparent"] == TRACE


async def test_a_malformed_trace_context_is_not_carried() -> None:
    store, outbox = Store(), Outbox()
    await intake(store).outbound(outbox, [Msg(outbound("c1", "a1", "2026-11-30T10:00:00Z"),
                                              headers=[("traceparent", b"junk")])])  # type: ignore[arg-type]
    [(_, _, _, _, headers)] = outbox.sent
    assert "traceparent" not in dict(headers)


async def test_a_dead_letter_names_its_schema_and_keeps_the_trace() -> None:
    store, outbox = Store(), Outbox()
    await intake(store).outbound(outbox, [Msg(b"{not json", headers={"traceparent": TRACE})])  # type: ignore[arg-type]
    [(topic, _, _, _, headers)] = outbox.sent
    assert topic == NAMES.dlq
    assert dict(headers) == {"content-type": b"application/json",
                             "schema-id": b"callback-events-dlq.v1", "traceparent": TRACE}
