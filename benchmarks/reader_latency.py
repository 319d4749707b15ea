"""Reader latency for a 366-day range (prints p50/p99; informational, never asserted).

Usage: python -m benchmarks.reader_latency [--requests N]   (needs Redis on 6379)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import date, timedelta

import aiohttp
from aiohttp import web

from stream_app.counters import ClassifyWrite, CounterStore, InboundWrite
from stream_app.matching import UNMATCHED, Decision
from stream_app.reader import STATS_PATH, create_reader
from stream_app.settings import Settings
from tests.support import free_port

START = date(2023, 1, 1)


async def populate(store: CounterStore, env: str, calls_per_day: int) -> None:
    for offset in range(366):
        day = START + timedelta(days=offset)
        t = time.mktime(day.timetuple()) + 3600
        inbound = [InboundWrite(env, f"{day}-{i}", "received", t, day.isoformat(), f"e{i}")
                   for i in range(calls_per_day)]
        await store.record_inbound(inbound)
        decisions = [UNMATCHED if i % 5 == 0 else Decision(f"agent-{i % 7}", f"out-{i}")
                     for i in range(calls_per_day)]
        await store.classify([ClassifyWrite(env, f"{day}-{i}", d)
                              for i, d in enumerate(decisions)])


async def main(requests: int, redis_url: str) -> None:
    env = f"latency-{uuid.uuid4().hex[:6]}"
    settings = Settings(redis_url=redis_url, api_tokens=f"bench-token={env}")
    store = CounterStore.from_url(redis_url, settings.dedup_ttl_seconds)
    await populate(store, env, calls_per_day=20)
    runner = web.AppRunner(create_reader(settings, store))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    end = START + timedelta(days=365)
    url = (f"http://127.0.0.1:{port}{STATS_PATH}?start_date={START}&end_date={end}")
    headers = {"Authorization": "Bearer bench-token"}
    samples = []
    async with aiohttp.ClientSession() as http:
        for _ in range(requests):
            began = time.perf_counter()
            async with http.get(url, headers=headers) as response:
                body = await response.json()
            samples.append(time.perf_counter() - began)
    await runner.cleanup()
    assert body["data"]["total_callbacks_received"] == 366 * 20
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"366-day range, {requests} sequential requests: "
          f"p50 {statistics.median(samples) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.redis))
