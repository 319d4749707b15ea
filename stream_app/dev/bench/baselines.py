"""The baselines the worker is compared with: plain aiokafka, and a bare Faust agent."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

from stream_app.dev.bench.bare import decode
from stream_app.dev.bench.measure import Progress, cpu_seconds
from stream_app.dev.bench.workload import Topics


async def plain_aiokafka(bootstrap: str, topics: Topics, expected: int,
                         progress: Progress) -> dict[str, float]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(*topics.as_kinds().values(), bootstrap_servers=bootstrap,
                                group_id=f"bench-plain-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        seen, wall, cpu = 0, 0.0, 0.0
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=5000, max_records=10_000)
            if not seen:
                wall, cpu = time.perf_counter(), time.process_time()
            for messages in batch.values():
                for m in messages:
                    decode(m.value)
                seen += len(messages)
            progress("plain aiokafka consumer", seen, expected)
        return rates(seen, time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        await consumer.stop()


def rates(events: int, wall: float, cpu: float) -> dict[str, float]:
    events, wall = max(events, 1), max(wall, 1e-9)  # a tiny run may finish at once
    return {"events": events, "seconds": wall, "events_per_second": events / wall,
            "cpu_us_per_event": cpu / events * 1e6}


# -- 2. the bare Faust agent ------------------------------------------------------------

WARM_FRACTION = 0.02
"""CPU is counted from the moment a consumer has handled this share of the events, so
start-up (imports, group join) is not in the figure."""


async def bare_faust(bootstrap: str, topics: Topics, expected: int, workdir: Path,
                     progress: Progress, patched: bool = False) -> dict[str, float]:
    what = "bare Faust agent" + (" (patched)" if patched else "")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stream_app.dev.bench.bare", *(["--patched"] if patched else []),
        bootstrap, f"bench-bare-{uuid.uuid4().hex[:8]}", str(expected),
        str(workdir / f"bare-{patched}"), *topics.as_kinds().values(),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert child.stdout is not None
    try:
        start: tuple[int, float, float] | None = None
        count = 0
        while count < expected:
            line = await asyncio.wait_for(child.stdout.readline(), 600)
            if not line:
                raise RuntimeError("bench: the bare Faust agent exited early")
            if line.startswith(b"count "):
                count = int(line.split()[1])
                progress(what, count, expected)
                if start is None and count >= expected * WARM_FRACTION:
                    start = (count, time.perf_counter(), cpu_seconds(child.pid))
        assert start is not None
        return rates(expected - start[0], time.perf_counter() - start[1],
                      cpu_seconds(child.pid) - start[2])
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


# -- 3. the worker ------------------------------------------------------------------------
