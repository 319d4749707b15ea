"""Live ops figures: N open SSE streams on one reader while counters change at 2,000
events/s, and the reader's 366-day read with its answer cache (a quiet environment)
against the same read on an environment changing 20 times a second (every change drops
the cached answer) — the uncached cost measured in the same run by cycling through
2,000 different 366-day ranges, more than the cache keeps.

Usage: python -m benchmarks.live_streams [--streams 0,100,1000] [--seconds 10]

Needs Redis (``stream-app services up``); starts its own reader process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from pathlib import Path

from stream_app.core.store.counters import CounterStore
from stream_app.dev.bench.live_streams import live_streams, raise_open_files
from stream_app.dev.bench.measure import Progress, free_port, poll
from stream_app.dev.bench.reader_load import populate_year, reader_load
from stream_app.dev.processes import StreamAppProcess
from stream_app.settings import load_settings


async def main(streams: list[int], seconds: float, rate: float) -> None:
    settings = load_settings()
    raise_open_files()
    run = uuid.uuid4().hex[:8]
    quiet, busy, live = f"bench-quiet-{run}", f"bench-busy-{run}", f"bench-live-{run}"
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k.startswith("STREAM_APP_")},
           "STREAM_APP_READER_PORT": str(port),
           "STREAM_APP_API_TOKENS": f"t-quiet={quiet},t-busy={busy},t-live={live}"}
    progress = Progress()
    store = CounterStore.from_settings(settings)
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(os.environ.get("BENCH_READER_LOG", Path(scratch) / "reader.log"))
        reader = StreamAppProcess(["reader"], log, env)
        try:
            base = f"http://127.0.0.1:{port}"
            await poll(lambda: _ready(base), bool, 30)
            for e in (quiet, busy):
                await populate_year(store, e)
            url = f"{base}/api/v1/callback-agents/stats"
            cached = await reader_load(url, "t-quiet", 16, seconds, progress)
            uncached = await reader_load(url, "t-busy", 16, seconds, progress, distinct=2000)
            rows = []
            for n in streams:
                rows.append(await live_streams(f"{base}/api/v1/callback-agents/stats/live",
                                               "t-live", store, live, reader.pid, n, seconds,
                                               rate, progress) if n else None)
        finally:
            reader.stop()
            await store.close()
            progress.end()
    print("reader, 366-day range, 16 clients:")
    for name, f in (("one range (cached)", cached), ("2,000 ranges (uncached)", uncached)):
        print(f"  {name:<22} {f['requests_per_second']:>8,.0f} req/s  p50 {f['p50_ms']:.2f} ms"
              f"  p99 {f['p99_ms']:.2f} ms")
    print(f"  p99 ratio uncached/cached: {uncached['p99_ms'] / cached['p99_ms']:.1f}x")
    print(f"live streams, counters changing at {rate:,.0f} events/s for {seconds:.0f} s:")
    print(f"  {'streams':>7} {'p50 ms':>8} {'p99 ms':>8} {'pushes/s/stream':>16} "
          f"{'reader CPU ms/s':>16} {'µs/s per stream':>16} {'idle CPU ms/s':>14} {'RSS MiB':>8}")
    for row in rows:
        if row:
            print(f"  {row['streams']:>7.0f} {row['p50_ms']:>8.0f} {row['p99_ms']:>8.0f} "
                  f"{row['pushes_per_stream_per_second']:>16.2f} "
                  f"{row['reader_cpu_ms_per_second']:>16.1f} "
                  f"{row['reader_cpu_us_per_stream_per_second']:>16.1f} "
                  f"{row['reader_idle_cpu_ms_per_second']:>14.2f} {row['reader_rss_mib']:>8.0f}")


async def _ready(base: str) -> bool:
    import aiohttp

    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="100,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    args = parser.parse_args()
    asyncio.run(main([int(n) for n in args.streams.split(",")], args.seconds, args.rate))
