"""Input written by transactional producers, commits and aborts interleaved, is counted
exactly at full speed: only committed records count, markers and aborted records cost no
re-fetch, and the group's committed offsets reach the end of every input partition."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from stream_app.core.kafka.topics import EndOffsets
from stream_app.core.store.counters import CounterStore
from stream_app.dev.simulate import Kind, Scenario, Traffic, generate
from stream_app.settings import Settings
from tests.conftest import Endpoints
from tests.support import WorkerProcess, poll, truth_from_topics, worker_env

pytestmark = pytest.mark.integration

TRANSACTION = 17
"""Records per transaction; every :data:`ABORT_EVERY`-th one is aborted first."""
ABORT_EVERY = 5
REFETCH_LINES = ("fetching from there again", "stands still", "hold no records",
                 "nothing from offset")


def poisoned(value: bytes) -> bytes:
    """The same event as a new call: counted if an aborted record were ever read."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if not isinstance(event, dict):
        return value
    for field in ("event_id", "call_id"):
        if isinstance(event.get(field), str):
            event[field] = f"aborted-{event[field]}"
    return orjson.dumps(event)


async def produce_in_transactions(bootstrap: str, topics: dict[Kind, str],
                                  traffic: Traffic, rate: float) -> int:
    """Send every message in transactions of :data:`TRANSACTION`; before every fifth, a
    transaction of the same messages as new calls is aborted. Returns the aborted count."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    aborted, began = 0, time.monotonic()
    try:
        chunks = [traffic.messages[i:i + TRANSACTION]
                  for i in range(0, len(traffic.messages), TRANSACTION)]
        for n, chunk in enumerate(chunks):
            if n % ABORT_EVERY == ABORT_EVERY - 1:
                await producer.begin_transaction()
                for kind, value in chunk:
                    await producer.send(topics[kind], poisoned(value))
                await producer.abort_transaction()
                aborted += len(chunk)
            async with producer.transaction():
                for kind, value in chunk:
                    await producer.send(topics[kind], value)
            ahead = (n + 1) * TRANSACTION / rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await producer.stop()
    return aborted


async def committed_behind(settings: Settings, inputs: list[str]) -> int:
    """Records between the group's committed offsets and the inputs' committed ends."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    ends = EndOffsets(settings)
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
        parts = [(t, p) for t in inputs for p in range(settings.partitions)]
        end = await ends(parts)
    finally:
        await admin.close()
        await ends.close()
    committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    return sum(max(0, e - committed.get(tp, 0)) for tp, e in end.items())


async def test_transactional_input_is_exact_without_refetches(endpoints: Endpoints,
                                                              redis: Redis,
                                                              tmp_path: Path) -> None:
    scenario = Scenario(seed=26, environments=2, callbacks=900, contacts=200,
                        environment_prefix=f"tx-{uuid.uuid4().hex[:6]}")
    traffic = generate(scenario)
    worker = WorkerProcess(worker_env(endpoints.kafka_bootstrap, endpoints.redis_url,
                                      tmp_path, match_grace_seconds=10))
    s = worker.settings
    topics: dict[Kind, str] = {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
                               "config": s.topic_config}
    store = CounterStore(redis, s.dedup_ttl_seconds)
    envs = sorted({f"{scenario.environment_prefix}-{i + 1}" for i in range(2)})

    async def received() -> int:
        return sum([(await store.read_stats(e, [str(scenario.day)])).received for e in envs])

    worker.start()
    began = time.monotonic()
    sending = asyncio.create_task(produce_in_transactions(s.kafka_bootstrap, topics, traffic,
                                                          rate=600))
    try:
        await poll(received, lambda n: n >= 200, timeout=120, interval=0.05,
                   what=f"some counted\n{worker.log_tail()}")
        worker.kill()
        worker.start()
        aborted = await sending
        produced_at = time.monotonic()
        behind = await poll(lambda: committed_behind(s, list(topics.values())),
                            lambda n: n == 0, timeout=60, interval=0.1,
                            what="commits at the end")
        commit_lag = time.monotonic() - produced_at
        truth = await truth_from_topics(s)
        for env, by_day in truth.items():
            for day, body in by_day.items():
                await poll(lambda env=env, day=day: store.read_stats(env, [day]),
                           lambda st, body=body: _counts(st) == _truth(body), timeout=120,
                           what=f"{env} {day} == {_truth(body)}\n{worker.log_tail()}")
        settled = time.monotonic() - began
        # One more transaction on quiet topics: its commit marker ends each partition it
        # touched, and the commit must run over it at once (not after a re-fetch).
        outbound_only = Traffic(messages=[m for m in traffic.messages
                                          if m[0] == "outbound"][:TRANSACTION])
        await produce_in_transactions(s.kafka_bootstrap, topics, outbound_only, rate=1e6)
        last = time.monotonic()
        await poll(lambda: committed_behind(s, list(topics.values())), lambda n: n == 0,
                   timeout=60, interval=0.1, what="the last transaction committed")
        tail_lag = time.monotonic() - last
        log = worker.log.read_text(errors="replace")
    finally:
        worker.stop()
    assert behind == 0
    assert aborted > 0 and set(truth) == set(envs)
    refetched = [line for line in log.splitlines() if any(s in line for s in REFETCH_LINES)]
    assert not refetched, "markers or aborted records were taken for lost messages:\n" + \
        "\n".join(refetched[:10])
    print(f"\ntransactional input: {len(traffic.messages)} committed + {aborted} aborted "
          f"records in transactions of {TRANSACTION}, a SIGKILL between; exact after "
          f"{settled:.1f}s; committed offsets at the end {commit_lag:.1f}s after the last "
          f"transaction of the run, {tail_lag:.1f}s after one on quiet topics")


def _truth(body: dict) -> tuple:
    return (body["total_callbacks_received"], body["callbacks_answered"],
            body["callbacks_unmatched"],
            {r["source_agent_id"]: r["count"] for r in body["callbacks_by_source_agent"]})


def _counts(stats) -> tuple:  # type: ignore[no-untyped-def]
    return (stats.received, stats.answered, stats.unmatched,
            {a: c for a, c in stats.by_source.items() if c})
