"""A real worker process counts an inbound call from a real broker into real Redis."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from stream_app.core.store.layout import stats_key
from tests.support import WorkerProcess, inbound, poll, produce

pytestmark = pytest.mark.integration


async def test_worker_counts_a_received_callback(worker: WorkerProcess, producer: AIOKafkaProducer,
                                                 redis: Redis, env_id: str) -> None:
    await produce(producer, worker.settings.topic_inbound,
                  inbound(env_id, "+5511999990000", "call-1", "2024-03-05T12:00:00Z"))
    key = stats_key(env_id, "2024-03-05")
    counters = await poll(lambda: redis.hgetall(key), lambda h: h.get("received") == "1",
                          what=f"received=1 in {key}; worker log:\n{worker.log_tail()}")
    assert counters["received"] == "1"
    assert worker.alive()
