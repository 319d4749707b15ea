"""Partitions added to an input topic while the worker runs join the low watermark: a
callback whose outbound call sits in a new partition is matched, not decided before
that partition was read (issue 17)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from redis.asyncio import Redis

from stream_app.core.store.counters import CounterStore
from tests.conftest import Endpoints
from tests.integration.test_state_dir import one_matched_callback
from tests.support import WorkerProcess, inbound, outbound, poll, produce, worker_env

pytestmark = pytest.mark.integration

DAY = "2024-05-10"


async def test_a_callback_matched_by_a_call_in_a_partition_added_at_run_time(
        endpoints: Endpoints, producer: AIOKafkaProducer, redis: Redis,
        tmp_path: Path) -> None:
    worker = WorkerProcess(worker_env(endpoints.kafka_bootstrap, endpoints.redis_url,
                                      tmp_path))
    worker.start()
    try:
        await one_matched_callback(worker, producer, redis)  # running, caught up
        s = worker.settings
        admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_partitions({s.topic_outbound: NewPartitions(total_count=6)})
        finally:
            await admin.close()
        deadline = time.monotonic() + 90
        while "input partitions added" not in worker.log.read_text():
            assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.2)
        assert f"{s.topic_outbound}[5]" in worker.log.read_text()

        env = f"env-{uuid.uuid4().hex[:10]}"
        phone = "+5511900000077"
        await produce(producer, s.topic_inbound, inbound(env, phone, f"{env}-cb",
                                                         f"{DAY}T09:00:00Z"))
        fresh = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)  # knows all 6
        await fresh.start()
        try:
            sent = await fresh.send_and_wait(s.topic_outbound, orjson.dumps(
                outbound(env, phone, "agent-new", f"{DAY}T08:59:00Z")), partition=5)
        finally:
            await fresh.stop()
        assert sent.partition == 5
        store = CounterStore(redis, 3600)
        stats = await poll(lambda: store.read_stats(env, [DAY]),
                           lambda st: st.unmatched + sum(st.by_source.values()) == 1,
                           timeout=150, what=f"the callback decided; {worker.log_tail()}")
        assert stats.by_source == {"agent-new": 1}, "matched by the new partition's call"
        assert stats.unmatched == 0
    finally:
        worker.stop()
