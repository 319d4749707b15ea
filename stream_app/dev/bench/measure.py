"""How the bench measures: CPU and RSS of a process, metrics of a worker, polling."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from stream_app.core.store.counters import CounterStore
from stream_app.dev.processes import check_children
from stream_app.dev.simulate import Traffic

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Progress:
    """One line on stderr, rewritten in place: what the bench is doing and how far."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __call__(self, what: str, done: float = 0.0, total: float = 0.0) -> None:
        if self.quiet:
            return
        bar = ""
        if total:
            filled = int(30 * min(done / total, 1.0))
            bar = f" [{'#' * filled}{'.' * (30 - filled)}] {done:,.0f}/{total:,.0f}"
        sys.stderr.write(f"\r\x1b[2K{what}{bar}")
        sys.stderr.flush()

    def end(self) -> None:
        if not self.quiet:
            sys.stderr.write("\r\x1b[2K")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def poll(probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool],
               timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        check_children()  # a worker or reader that died: stop now, with its log's tail
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: gave up after {timeout:.0f}s (last: {value!r})")
        await asyncio.sleep(interval)


# -- the workload ---------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _metrics_text(port: int) -> str:
    """A worker's ``/metrics`` page ("" if it does not answer yet)."""
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/metrics") as response:
            return await response.text()
    except aiohttp.ClientError:
        return ""


async def metric(port: int, sample: str) -> int:
    """The sum of a worker's ``/metrics`` samples starting with ``sample`` (0 if it does
    not answer yet)."""
    text = await _metrics_text(port)
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(sample)))


async def metric_value(port: int, sample: str) -> float:
    """One sample of a worker's ``/metrics`` as a float (0.0 if absent)."""
    text = await _metrics_text(port)
    return max((float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith(sample + " ")), default=0.0)


async def consumed(port: int) -> int:
    """Events the worker's intake has consumed so far."""
    return await metric(port, "callback_stats_events_consumed_total{")


async def decided(store: CounterStore, environments: list[str], days: list[str]) -> int:
    """Calls counted *and* classified, over every environment of the workload."""
    total = 0
    for env in environments:
        stats = await store.read_stats(env, days)
        total += min(stats.received, stats.unmatched + sum(stats.by_source.values()))
    return total


async def all_decided(store: CounterStore, traffic: Traffic, what: str,
                      progress: Progress) -> None:
    """Wait until every callback of ``traffic`` is counted and classified in Redis."""
    from zoneinfo import ZoneInfo

    from stream_app.core.domain.matching import day_bucket, epoch

    calls = {(e.environment_id, e.call_id) for e, _ in traffic.inbound}
    environments = sorted({env for env, _ in calls})
    days = sorted({day_bucket(epoch(e.occurred_at), ZoneInfo("UTC"))
                   for e, _ in traffic.inbound})

    async def done() -> int:
        n = await decided(store, environments, days)
        progress(what, n, len(calls))
        return n

    await poll(done, lambda n: n >= len(calls), 1800, interval=0.2)

async def consumed_shown(port: int, total: int, progress: Progress) -> int:
    n = await consumed(port)
    progress("state: worker consuming", n, total)
    return n


def more_than(count: int) -> Callable[[int], bool]:
    return lambda n: n > count


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
            "max_ms": ordered[-1] * 1000}


# -- 5. the reader ------------------------------------------------------------------------


BLOCK_LINE = "event loop held for "


def loop_blocks(log: str, frames: int = 6) -> list[str]:
    """The steps that held the worker's loop, as its block watcher logged them
    (``observe/looplag.py``): per block, its held time and the innermost ``frames``
    frames of the loop thread's stack, e.g. ``0.31 s: join.py:120 decide < …``."""
    blocks: list[str] = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if BLOCK_LINE not in line:
            continue
        held = line.split(BLOCK_LINE, 1)[1].split(" s", 1)[0]
        stack = []
        for frame in lines[i + 1:]:
            if frame.startswith("  File "):
                stack.append(frame)
            elif not frame.startswith("    "):
                break
        shown = [_frame(f) for f in reversed(stack[-frames:])]
        blocks.append(f"{held} s: " + " < ".join(shown))
    return blocks


def _frame(line: str) -> str:
    """``  File "/x/y/z.py", line 12, in f`` → ``z.py:12 f``."""
    path, rest = line.strip()[len('File "'):].split('", line ', 1)
    number, _, function = rest.partition(", in ")
    return f"{Path(path).name}:{number} {function}"

