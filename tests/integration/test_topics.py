"""The worker refuses to start when the join's topics are not co-partitioned."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream_app.core.kafka.topics import TopicLayoutError, TopicNames, check_copartitioned
from tests.conftest import Endpoints
from tests.support import REPO, WorkerProcess, poll, worker_env

pytestmark = pytest.mark.integration


def test_check_names_every_mismatch() -> None:
    check_copartitioned({"a": 4, "b": 4}, 4)
    with pytest.raises(TopicLayoutError, match="b has 3"):
        check_copartitioned({"a": 4, "b": 3}, 4)


async def test_worker_exits_with_a_clear_error(endpoints: Endpoints, tmp_path: Path) -> None:
    env = worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path)
    names = TopicNames.from_settings(WorkerProcess(env).settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(names.keyed, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    result = subprocess.run([sys.executable, "-m", "stream_app", "worker"], cwd=REPO,
                            env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert f"{names.keyed} has 3" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_group_less_read_tells_a_gap_without_records_from_one_with(
        endpoints: Endpoints) -> None:
    """Offsets without records (a transaction's commit marker) are a gap the broker
    confirms; offsets with records are not, whatever a consumer group did."""
    from aiokafka import AIOKafkaProducer

    from stream_app.core.kafka.topics import records_between

    topic = f"gaps-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap,
                                transactional_id=f"tx-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"in a transaction", partition=0)  # offset 0
    finally:
        await producer.stop()
    # The commit marker is written after the commit returns: wait for it (offset 1).
    await poll(lambda: end_offset(endpoints.kafka_bootstrap, topic), lambda end: end >= 2,
               timeout=30, what="the transaction's commit marker")
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    try:  # offset 1 is the commit marker: no record
        plain = await producer.send_and_wait(topic, b"after it", partition=0)
    finally:
        await producer.stop()
    assert plain.offset == 2
    servers = [endpoints.kafka_bootstrap]
    assert await records_between(servers, topic, 0, 1, 2) is False, "only the marker"
    assert await records_between(servers, topic, 0, 0, 2) is True
    assert await records_between(servers, topic, 0, 1, 3) is True


async def end_offset(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()
