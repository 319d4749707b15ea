"""What transactional input costs the worker: the same records, plain and transactional.

Usage: python -m benchmarks.transactional_input [--callbacks 3000] [--rounds 2]

Needs Kafka and Redis (``stream-app services up``; ``STREAM_APP_KAFKA_BOOTSTRAP`` and
``STREAM_APP_REDIS_URL`` as usual). Each round writes one seeded day of traffic twice,
on topics of its own: once plain, once by a transactional producer in transactions of
17 records, every fifth one first written as new calls and aborted (the input the
worker read before this release at ~8 s per marker). Then, per copy, alternated:

- a worker starts on the backlog; **records/s** is committed input records over the
  seconds from its start until the group's committed offsets reach the end of every
  input partition, and **CPU µs/record** its CPU over the same time;
- one more transaction (or batch) of 17 records is produced live; **commit lag** is the
  time from its commit until the group's committed offsets reach the new end.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from stream_app.core.kafka.topics import EndOffsets, ensure_topics
from stream_app.dev.bench.measure import cpu_seconds, free_port
from stream_app.dev.processes import StreamAppProcess
from stream_app.dev.simulate import Scenario, generate
from stream_app.settings import Settings, load_settings

TRANSACTION = 17
ABORT_EVERY = 5


def topics_of(base: Settings, name: str) -> dict[str, str]:
    return {"STREAM_APP_APP_ID": f"txbench-{name}", "STREAM_APP_TOPIC_OUTBOUND": f"{name}-out",
            "STREAM_APP_TOPIC_INBOUND": f"{name}-in", "STREAM_APP_TOPIC_CONFIG": f"{name}-cfg",
            "STREAM_APP_TOPIC_OUTCOMES": f"{name}-outcomes",
            "STREAM_APP_TOPIC_DLQ": f"{name}-dlq", "STREAM_APP_TOPIC_STATS": f"{name}-stats"}


async def write(settings: Settings, messages: list[tuple[str, bytes]],
                transactional: bool) -> None:
    topics = {"outbound": settings.topic_outbound, "inbound": settings.topic_inbound,
              "config": settings.topic_config}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5,
                                transactional_id=f"tx-{uuid.uuid4().hex[:8]}"
                                if transactional else None)
    await producer.start()
    try:
        for n in range(0, len(messages), TRANSACTION):
            chunk = messages[n:n + TRANSACTION]
            if not transactional:
                await asyncio.gather(*[await producer.send(topics[k], v) for k, v in chunk])
                continue
            if (n // TRANSACTION) % ABORT_EVERY == ABORT_EVERY - 1:
                await producer.begin_transaction()
                for kind, value in chunk:
                    await producer.send(topics[kind], value.replace(b'"call_id":"',
                                                                    b'"call_id":"aborted-'))
                await producer.abort_transaction()
            async with producer.transaction():
                for kind, value in chunk:
                    await producer.send(topics[kind], value)
    finally:
        await producer.stop()


async def behind(settings: Settings) -> int:
    """Input records the group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    ends = EndOffsets(settings)
    await admin.start()
    try:
        committed = {(tp.topic, tp.partition): m.offset for tp, m in
                     (await admin.list_consumer_group_offsets(settings.app_id)).items()}
        inputs = [(t, p) for t in (settings.topic_outbound, settings.topic_inbound,
                                   settings.topic_config) for p in range(settings.partitions)]
        end = await ends(inputs)
    finally:
        await admin.close()
        await ends.close()
    return sum(max(0, e - committed.get(tp, 0)) for tp, e in end.items())


async def until_committed(settings: Settings, worker: StreamAppProcess) -> None:
    while await behind(settings):
        worker.check_alive()
        await asyncio.sleep(0.1)


async def one(base: Settings, name: str, traffic: list[tuple[str, bytes]],
              live: list[tuple[str, bytes]], transactional: bool,
              scratch: Path) -> tuple[float, float, float]:
    env = {**topics_of(base, name), "STREAM_APP_WORKER_WEB_PORT": str(free_port()),
           "STREAM_APP_DATA_DIR": str(scratch / name)}
    settings = Settings(**{k.removeprefix("STREAM_APP_").lower(): v for k, v in env.items()},
                        kafka_bootstrap=base.kafka_bootstrap, redis_url=base.redis_url)
    await ensure_topics(settings)
    await write(settings, traffic, transactional)
    began = time.monotonic()
    worker = StreamAppProcess(["worker"], scratch / f"{name}.log", env)
    try:
        await until_committed(settings, worker)
        seconds, cpu = time.monotonic() - began, cpu_seconds(worker.pid)
        await write(settings, live, transactional)
        sent = time.monotonic()
        await until_committed(settings, worker)
        lag = time.monotonic() - sent
    finally:
        worker.stop()
    return len(traffic) / seconds, cpu / len(traffic) * 1e6, lag


async def run(callbacks: int, rounds: int) -> None:
    base = load_settings()
    traffic = generate(Scenario(seed=29, callbacks=callbacks, bad_rate=0.0)).messages
    live = generate(Scenario(seed=30, callbacks=10, bad_rate=0.0)).messages[:TRANSACTION]
    print(f"{len(traffic)} records; transactional: transactions of {TRANSACTION}, every "
          f"{ABORT_EVERY}th aborted first\n")
    print(f"{'round':>5} {'input':>14} {'records/s':>10} {'CPU µs/record':>14} "
          f"{'commit lag s':>13}")
    with tempfile.TemporaryDirectory(prefix="txbench-") as scratch:
        for r in range(rounds):
            for transactional in (False, True) if r % 2 == 0 else (True, False):
                kind = "transactional" if transactional else "plain"
                name = f"{kind[:2]}-{uuid.uuid4().hex[:8]}"
                rate, cpu, lag = await one(base, name, traffic, live, transactional,
                                           Path(scratch))
                print(f"{r + 1:>5} {kind:>14} {rate:>10.0f} {cpu:>14.0f} {lag:>13.2f}",
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2, help="alternated: plain first, "
                                                               "then transactional first")
    args = parser.parse_args()
    asyncio.run(run(args.callbacks, args.rounds))


if __name__ == "__main__":
    main()
