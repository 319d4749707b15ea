"""The worker's local state: a store ahead of its changelog repairs itself, and the state
directory names the Kafka cluster and the app (issue 17)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from stream_app.core.kafka.topics import TopicNames, cluster_id
from stream_app.core.store.counters import CounterStore, Stats
from tests.conftest import Endpoints
from tests.support import (
    WorkerProcess,
    inbound,
    outbound,
    poll,
    produce,
    wait_ready,
    worker_env,
)

pytestmark = pytest.mark.integration

DAY = "2024-05-10"


async def one_matched_callback(worker: WorkerProcess, producer: AIOKafkaProducer,
                               redis: Redis) -> Stats:
    """An outbound call and its callback in a fresh environment, until counted."""
    env = f"env-{uuid.uuid4().hex[:10]}"
    s = worker.settings
    await produce(producer, s.topic_outbound,
                  outbound(env, "+5511900000001", "agent-1", f"{DAY}T08:00:00Z"))
    await produce(producer, s.topic_inbound,
                  inbound(env, "+5511900000001", f"{env}-cb", f"{DAY}T09:00:00Z"))
    store = CounterStore(redis, 3600)
    return await poll(lambda: store.read_stats(env, [DAY]),
                      lambda st: st.received == 1 and st.by_source.get("agent-1") == 1,
                      timeout=120, what=f"the callback counted; {worker.log_tail()}")


async def delete_topics(bootstrap: str, names: TopicNames) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        every = [*names.public, names.keyed, *names.changelogs]
        await admin.delete_topics(every)
        deadline = time.monotonic() + 60
        while set(every) & set(await admin.list_topics()):
            assert time.monotonic() < deadline, "topics not deleted"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def a_run(env: dict[str, str], producer: AIOKafkaProducer, redis: Redis
                ) -> WorkerProcess:
    """A worker started, one callback counted, the worker stopped: its tables hold rows."""
    worker = WorkerProcess(env)
    worker.start()
    try:
        await one_matched_callback(worker, producer, redis)
    finally:
        worker.stop()
    return worker


async def test_a_store_ahead_of_recreated_topics_is_wiped_and_recovered(
        endpoints: Endpoints, producer: AIOKafkaProducer, redis: Redis,
        tmp_path: Path) -> None:
    env = worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path)
    worker = await a_run(env, producer, redis)
    names = TopicNames.from_settings(worker.settings)
    await delete_topics(endpoints.kafka_bootstrap, names)

    again = WorkerProcess(env)  # the same data directory, the topics recreated empty
    again.start()
    try:
        await one_matched_callback(again, producer, redis)
        wait_ready(again)
        assert again.alive()
    finally:
        again.stop()
    log = again.log.read_text()
    assert "the local store is ahead of its changelog" in log
    assert "ConsistencyError" not in log


async def test_the_state_directory_names_the_kafka_cluster_and_the_app(
        endpoints: Endpoints, producer: AIOKafkaProducer, redis: Redis,
        tmp_path: Path) -> None:
    env = worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path)
    worker = await a_run(env, producer, redis)
    cluster = await cluster_id(worker.settings)
    app_dir = tmp_path / f"kafka-{cluster}" / worker.settings.app_id
    assert app_dir.is_dir() and any(app_dir.rglob("*.db")), sorted(tmp_path.rglob("*"))[:20]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"kafka-{cluster}", "worker.log"]
