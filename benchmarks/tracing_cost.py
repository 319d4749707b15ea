"""What tracing costs the worker: the same records with tracing off and on.

Usage: python -m benchmarks.tracing_cost [--callbacks 3000] [--rounds 2]

Needs Kafka and Redis (``stream-app services up``; ``STREAM_APP_KAFKA_BOOTSTRAP`` and
``STREAM_APP_REDIS_URL`` as usual). Each round writes one seeded day of traffic twice, on
topics of its own. Then a worker starts on each backlog, alternated: once with tracing
off (the default), and once with ``OTEL_TRACES_EXPORTER=otlp`` exporting every span over
OTLP/HTTP to a sink in this process (it answers 200 and counts what it got). So the
figure includes the SDK, the protobuf encoding and the HTTP posts, but no collector.
**CPU µs/record** is the worker's CPU from its start until the group's committed offsets
reach the end of every input partition, per input record; **records/s** is over the same
time. The SDK's own variables pass through to the worker, e.g. to measure sampling:
``OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiohttp import web

from benchmarks.transactional_input import topics_of, until_committed, write
from stream_app.core.kafka.topics import ensure_topics
from stream_app.dev.bench.measure import cpu_seconds, free_port
from stream_app.dev.processes import StreamAppProcess
from stream_app.dev.simulate import Scenario, generate
from stream_app.settings import Settings, load_settings


class Sink:
    """An OTLP/HTTP traces endpoint that keeps nothing: 200 and a count."""

    def __init__(self) -> None:
        self.posts = 0
        self.bytes = 0
        self.port = free_port()

    async def traces(self, request: web.Request) -> web.Response:
        self.posts += 1
        self.bytes += len(await request.read())
        return web.Response(status=200, content_type="application/x-protobuf")

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


async def one(base: Settings, name: str, traffic: list[tuple[str, bytes]], traced: bool,
              sink: Sink, scratch: Path) -> tuple[float, float]:
    env = {**topics_of(base, name), "STREAM_APP_WORKER_WEB_PORT": str(free_port()),
           "STREAM_APP_DATA_DIR": str(scratch / name),
           "OTEL_TRACES_EXPORTER": "otlp" if traced else "none",
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{sink.port}/v1/traces"}
    settings = Settings(**{k.removeprefix("STREAM_APP_").lower(): v for k, v in env.items()
                           if k.startswith("STREAM_APP_")},
                        kafka_bootstrap=base.kafka_bootstrap, redis_url=base.redis_url)
    await ensure_topics(settings)
    await write(settings, traffic, transactional=False)
    began = time.monotonic()
    worker = StreamAppProcess(["worker"], scratch / f"{name}.log", env)
    try:
        await until_committed(settings, worker)
        seconds, cpu = time.monotonic() - began, cpu_seconds(worker.pid)
    finally:
        worker.stop()
    return len(traffic) / seconds, cpu / len(traffic) * 1e6


async def run(callbacks: int, rounds: int) -> None:
    base = load_settings()
    traffic = generate(Scenario(seed=31, callbacks=callbacks, bad_rate=0.0)).messages
    sink = Sink()
    runner = await sink.start()
    print(f"{len(traffic)} records\n")
    print(f"{'round':>5} {'tracing':>8} {'records/s':>10} {'CPU µs/record':>14}")
    cpu: dict[bool, list[float]] = {False: [], True: []}
    try:
        with tempfile.TemporaryDirectory(prefix="tracebench-") as scratch:
            for r in range(rounds):
                for traced in (False, True) if r % 2 == 0 else (True, False):
                    rate, micros = await one(base, f"tr-{uuid.uuid4().hex[:8]}", traffic,
                                             traced, sink, Path(scratch))
                    cpu[traced].append(micros)
                    print(f"{r + 1:>5} {'on' if traced else 'off':>8} {rate:>10.0f} "
                          f"{micros:>14.0f}", flush=True)
    finally:
        await runner.cleanup()
    ratio = (sum(cpu[True]) / len(cpu[True])) / (sum(cpu[False]) / len(cpu[False]))
    print(f"\nCPU per record, tracing on / off: {ratio:.2f}x ({sink.posts} OTLP posts, "
          f"{sink.bytes / 1e6:.1f} MB of spans)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2, help="alternated: off first, "
                                                               "then on first")
    args = parser.parse_args()
    asyncio.run(run(args.callbacks, args.rounds))


if __name__ == "__main__":
    main()
