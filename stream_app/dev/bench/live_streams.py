"""The live streams' figures: N open SSE streams on one reader while counters change.

A writer changes one environment's counters at ``rate`` events/s (batches every 50 ms,
through the worker's own scripts, so each batch is one change notification) and notes
the environment's version after each batch. Every stream notes the ``id`` of each event
with its arrival time. The delivery latency of a change is, per stream, the arrival of
the first event whose id covers that change's version, minus the moment the write
returned (coalescing included: at most one push per 0.5 s per stream). The reader's CPU
is read from ``/proc`` over the window, and over an idle window with the streams open.
"""

from __future__ import annotations

import asyncio
import resource
import time
import uuid
from bisect import bisect_left
from datetime import UTC, datetime
from urllib.parse import urlsplit

from stream_app.core.store.counters import CounterStore, InboundWrite
from stream_app.core.store.layout import version_key
from stream_app.dev.bench.measure import Progress, cpu_seconds, percentiles, rss_mib

BATCH_SECONDS = 0.05


def raise_open_files() -> None:
    """Soft limit of open files up to the hard one: a stream is a socket on each side
    (call before starting the reader, which inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                    else max(soft, 65536), hard))


async def live_streams(live_url: str, token: str, store: CounterStore, env: str,
                       reader_pid: int, streams: int, seconds: float, rate: float,
                       progress: Progress) -> dict[str, float]:
    parts = urlsplit(live_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(streams)]
    opened = asyncio.Event()
    ready = [0]

    async def stream(i: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")
            ready[0] += 1
            if ready[0] == streams:
                opened.set()
            while True:
                line = await reader.readline()
                if not line:
                    return
                at = line.find(b"id: ")  # chunked framing may prefix a line
                if at >= 0:
                    arrivals[i].append((int(line[at + 4:].split(b"\r")[0]), time.monotonic()))
        finally:
            writer.close()

    tasks = [asyncio.create_task(stream(i)) for i in range(streams)]
    try:
        await asyncio.wait_for(opened.wait(), 120)
        progress("live streams open", streams, streams)
        await asyncio.sleep(2.0)
        idle_cpu = cpu_seconds(reader_pid)
        await asyncio.sleep(5.0)
        idle_cpu = cpu_seconds(reader_pid) - idle_cpu
        busy_cpu = cpu_seconds(reader_pid)
        writes = await _write(store, env, seconds, rate, progress)
        busy_cpu = cpu_seconds(reader_pid) - busy_cpu
        await asyncio.sleep(2.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = []
    for mine in arrivals:
        ids = [v for v, _ in mine]
        for version, done in writes[::10]:
            k = bisect_left(ids, version)
            if k < len(ids):
                latencies.append(max(0.0, mine[k][1] - done))
    pushes = sum(len(a) for a in arrivals) / streams / seconds
    return {"streams": streams, "rate": rate, "seconds": seconds,
            "pushes_per_stream_per_second": pushes,
            "reader_cpu_ms_per_second": 1000 * busy_cpu / seconds,
            "reader_cpu_us_per_stream_per_second": 1e6 * busy_cpu / seconds / streams,
            "reader_idle_cpu_ms_per_second": 1000 * idle_cpu / 5.0,
            "reader_rss_mib": rss_mib(reader_pid), **percentiles(latencies)}


async def _write(store: CounterStore, env: str, seconds: float, rate: float,
                 progress: Progress) -> list[tuple[int, float]]:
    """Change the counters for ``seconds``; (version, time written) per batch."""
    per_batch = max(1, round(rate * BATCH_SECONDS))
    day = datetime.now(UTC).date().isoformat()
    now, run = time.time(), uuid.uuid4().hex[:8]
    written: list[tuple[int, float]] = []
    began = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - began) < seconds:
        await store.record_inbound([InboundWrite(env, f"live-{run}-{n + i}", "received", now, day,
                                                 f"e{n + i}", now, "cb-live")
                                    for i in range(per_batch)])
        n += per_batch
        version = int(await store.redis.get(version_key(env)) or 0)
        written.append((version, time.monotonic()))
        progress("live streams, changes", elapsed, seconds)
        await asyncio.sleep(max(0.0, began + len(written) * BATCH_SECONDS - time.monotonic()))
    return written
