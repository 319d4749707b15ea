"""The chosen Apache Kafka release works with aiokafka as Faust uses it."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.conftest import Endpoints
from tests.support import poll

pytestmark = pytest.mark.integration


async def test_topic_creation_produce_group_join_and_commit(endpoints: Endpoints) -> None:
    topic, group = f"compat-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        # A fresh broker may answer the describe before the new topic's metadata is
        # there (CI on 2026-12-07: no partitions yet): poll, do not assume.
        partitions = await poll(lambda: _partitions(admin, topic), lambda n: n == 3, 30)
    finally:
        await admin.close()
    assert partitions == 3

    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=str(i).encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=endpoints.kafka_bootstrap,
                                group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        seen: list[bytes] = []
        while len(seen) < 30:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "the group was joined but nothing was fetched"
            seen += [m.value for messages in batch.values() for m in messages]
        await consumer.commit()
        committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        await consumer.stop()
    assert sorted(seen) == sorted(f"m{i}".encode() for i in range(30))
    assert sum(committed.values()) == 30


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> int:
    described = await admin.describe_topics([topic])
    return len(described[0]["partitions"])
