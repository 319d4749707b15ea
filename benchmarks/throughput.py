"""Worker throughput vs. the raw consume rate of the same topics (prints figures only).

Usage: python -m benchmarks.throughput [--callbacks N]   (needs `stream-app services up`)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from stream_app.counters import CounterStore
from stream_app.simulate import Scenario, generate, produce
from tests.support import WorkerProcess, poll, worker_env


async def raw_consume_rate(bootstrap: str, topics: list[str], expected: int) -> float:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap,
                                group_id=f"bench-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        seen, began = 0, None
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=5000, max_records=10_000)
            began = began or time.perf_counter()
            seen += sum(len(messages) for messages in batch.values())
        return seen / (time.perf_counter() - began)
    finally:
        await consumer.stop()


async def main(callbacks: int, kafka: str, redis_url: str) -> None:
    scenario = Scenario(seed=3, environments=4, callbacks=callbacks, contacts=2000,
                        environment_prefix=f"bench-{uuid.uuid4().hex[:6]}")
    traffic = generate(scenario)
    data = Path(tempfile.mkdtemp(prefix="bench-"))
    worker = WorkerProcess(worker_env(kafka, redis_url, data, partitions=8))
    s = worker.settings
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound, "config": s.topic_config}
    store = CounterStore(Redis.from_url(redis_url, decode_responses=True), 3600)
    calls = len({(e.environment_id, e.call_id) for e, _ in traffic.inbound})
    day = [scenario.day.isoformat()]
    envs = sorted({e.environment_id for e, _ in traffic.inbound})

    async def counted() -> int:
        return sum([(await store.read_stats(env, day)).received for env in envs])

    worker.start()
    try:
        warm = Scenario(seed=1, environments=1, callbacks=10, environment_prefix="warm")
        await produce(kafka, topics, generate(warm))
        await poll(lambda: store.read_stats("warm-1", [warm.day.isoformat()]),
                   lambda st: st.received == 10, timeout=120, what="warm-up")
        began = time.perf_counter()
        produced_in = await produce(kafka, topics, traffic)
        await poll(counted, lambda n: n == calls, timeout=600, interval=0.05, what="counted")
        worker_seconds = time.perf_counter() - began
    finally:
        worker.stop()
    raw = await raw_consume_rate(kafka, list(topics.values()), len(traffic.messages))
    rate = len(traffic.messages) / worker_seconds
    print(f"messages: {len(traffic.messages)} ({calls} callbacks), produced in {produced_in:.1f}s")
    print(f"worker end to end (intake -> keyed topic -> join -> Redis): {rate:,.0f} events/s")
    print(f"raw aiokafka consume of the same topics:                    {raw:,.0f} events/s")
    print(f"ratio: {rate / raw:.2f}")
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--callbacks", type=int, default=20_000)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(main(args.callbacks, args.kafka, args.redis))
