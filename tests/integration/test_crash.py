"""A worker killed with SIGKILL mid-stream and restarted ends exactly at the oracle."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from stream_app.core.store.counters import CounterStore
from stream_app.dev.simulate import Scenario, generate, produce
from tests.conftest import Endpoints
from tests.support import (
    WorkerProcess,
    assert_state_on_keyed_partitions,
    assert_stats_topic_settles,
    free_port,
    poll,
    worker_env,
)

pytestmark = pytest.mark.integration


async def test_sigkill_mid_stream_loses_and_doubles_nothing(endpoints: Endpoints, redis: Redis,
                                                           tmp_path: Path) -> None:
    scenario = Scenario(seed=11, environments=3, callbacks=3000, contacts=500,
                        environment_prefix=f"crash-{uuid.uuid4().hex[:6]}")
    traffic = generate(scenario)
    assert len(traffic.messages) >= 5000
    truth = traffic.truth(scenario.window_seconds, ZoneInfo("UTC"))
    expected_total = sum(d["total_callbacks_received"] for env in truth.values()
                         for d in env.values())

    # The default G: after the restart the worker catches up on a backlog of both input
    # topics, and G must cover how far one topic's intake can run ahead of the other.
    worker = WorkerProcess(worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path,
                                      match_grace_seconds=30))
    s = worker.settings
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound, "config": s.topic_config}
    store = CounterStore(redis, s.dedup_ttl_seconds)
    days = sorted({day for env in truth.values() for day in env})

    async def received_so_far() -> int:
        totals = [await store.read_stats(env, days) for env in truth]
        return sum(t.received for t in totals)

    worker.start()
    began = time.monotonic()
    sending = asyncio.create_task(produce(s.kafka_bootstrap, topics, traffic, rate=1500))
    try:
        seen = await poll(received_so_far, lambda n: n >= expected_total // 4, timeout=120,
                          interval=0.05, what=f"a quarter counted\n{worker.log_tail()}")
        worker.kill()
        assert seen < expected_total, "the kill came after everything was counted"
        worker.start()
        await sending
        await _settles_to_truth(store, truth, worker)
        elapsed = time.monotonic() - began
        redis_url = endpoints.redis_url
        await assert_stats_topic_settles(s, redis_url, {
            env: {day: _counts(body) for day, body in by_day.items()}
            for env, by_day in truth.items()})
    finally:
        worker.stop()
    print(f"\ncrash test: {len(traffic.messages)} messages, killed at {seen}/{expected_total} "
          f"callbacks counted, settled in {elapsed:.1f}s "
          f"({len(traffic.messages) / elapsed:.0f} events/s end to end, incl. restart)")
    await _exactly_one_outcome_per_call(s.kafka_bootstrap, s.topic_outcomes, expected_total,
                                        sum(d["callbacks_answered"] for env in truth.values()
                                            for d in env.values()))


async def test_rebalance_mid_stream_loses_and_doubles_nothing(endpoints: Endpoints,
                                                             redis: Redis,
                                                             tmp_path: Path) -> None:
    """A second worker joins the group mid-stream and leaves again: two rebalances."""
    scenario = Scenario(seed=12, environments=2, callbacks=2000, contacts=400,
                        environment_prefix=f"rebal-{uuid.uuid4().hex[:6]}")
    traffic = generate(scenario)
    truth = traffic.truth(scenario.window_seconds, ZoneInfo("UTC"))
    total = sum(d["total_callbacks_received"] for env in truth.values() for d in env.values())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env = worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path / "a",
                     match_grace_seconds=30)
    first = WorkerProcess(env)
    second = WorkerProcess({**env, "STREAM_APP_DATA_DIR": str(tmp_path / "b"),
                            "STREAM_APP_WORKER_WEB_PORT": str(free_port())})
    s = first.settings
    store = CounterStore(redis, s.dedup_ttl_seconds)
    days = sorted({day for by_day in truth.values() for day in by_day})

    async def received_so_far() -> int:
        return sum([(await store.read_stats(e, days)).received for e in truth])

    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound, "config": s.topic_config}
    first.start()
    sending = asyncio.create_task(produce(s.kafka_bootstrap, topics, traffic, rate=800))
    try:
        await poll(received_so_far, lambda n: n >= total // 5, timeout=120, interval=0.05,
                   what="a fifth counted")
        second.start()
        await poll(received_so_far, lambda n: n >= total * 3 // 5, timeout=120, interval=0.05,
                   what="three fifths counted")
        second.stop()
        await sending
        await _settles_to_truth(store, truth, first)
    finally:
        second.stop()
        first.stop()
    assert await assert_state_on_keyed_partitions(s) > 0


async def _settles_to_truth(store: CounterStore, truth: dict, worker: WorkerProcess) -> None:
    for env, by_day in truth.items():
        for day, body in by_day.items():
            await poll(lambda env=env, day=day: store.read_stats(env, [day]),
                       lambda st, body=body: _body(st) == _counts(body), timeout=180,
                       what=f"{env} {day} == {_counts(body)}\n{worker.log_tail()}")


def _counts(body: dict) -> tuple:
    by_source = {r["source_agent_id"]: r["count"] for r in body["callbacks_by_source_agent"]}
    return (body["total_callbacks_received"], body["callbacks_answered"],
            body["callbacks_unmatched"], by_source)


def _body(stats) -> tuple:
    return (stats.received, stats.answered, stats.unmatched,
            {a: c for a, c in stats.by_source.items() if c})


async def _exactly_one_outcome_per_call(bootstrap: str, topic: str, calls: int,
                                        answered: int) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    ids: dict[str, set[str]] = {"classified": set(), "answered": set()}
    payloads: dict[str, bytes] = {}
    try:
        async def fetch() -> int:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batch.values():
                for m in messages:
                    record = orjson.loads(m.value)
                    ids[record["kind"]].add(record["id"])
                    assert payloads.setdefault(record["id"], m.value) == m.value, \
                        "a republished outcome changed its content"
            return len(ids["classified"]) + len(ids["answered"])

        await poll(fetch, lambda n: n >= calls + answered, timeout=60, what="all outcomes")
    finally:
        await consumer.stop()
    assert len(ids["classified"]) == calls
    assert len(ids["answered"]) == answered
