"""What waiting for a replica costs per event (``STREAM_APP_REDIS_MIN_REPLICAS``).

Usage: python -m benchmarks.replica_wait [--events 20000] [--batches 1,50,500]

Starts a Redis Cluster of its own (three masters, a replica each, on free ports in a
scratch directory), then writes the same inbound events through the worker's counter
store (``CounterStore.record_inbound``, as the join does per batch) twice per batch
size, interleaved: with ``min_replicas`` 0 and 1. Prints, per batch size, the wall time
and this process's CPU per event for both, and their ratio: the ``WAIT`` is one more
round trip per master a batch touched, so its cost per event shrinks as batches grow.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from stream_app.core.store.counters import CounterStore, InboundWrite
from stream_app.dev import clusters, services

ENVIRONMENTS = 6
"""Spread over the three masters (one slot per environment): a batch waits on several."""


@dataclass
class Figure:
    wall_us: float
    cpu_us: float


def free_run(length: int) -> int:
    """The first of ``length`` free consecutive ports whose bus ports (+10000) are free."""
    for base in range(20_000, 50_000, 100):
        ports = [*range(base, base + length), *range(base + 10_000, base + 10_000 + length)]
        if not any(services.port_open(p) for p in ports):
            return base
    raise RuntimeError("no free run of ports")


async def write(store: CounterStore, events: int, batch: int) -> Figure:
    run = uuid.uuid4().hex[:8]
    writes = [InboundWrite(f"bench-{run}-{i % ENVIRONMENTS}", f"call-{i}", "received",
                           1_700_000_000.0 + i, "2023-11-14", f"ev-{i}") for i in range(events)]
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, events, batch):
        await store.record_inbound(writes[start:start + batch])
    return Figure((time.perf_counter() - wall) / events * 1e6,
                  (time.process_time() - cpu) / events * 1e6)


async def measure(url: str, events: int, batches: list[int], rounds: int) -> None:
    stores = {n: CounterStore.from_url(url, 3600, cluster=True, min_replicas=n) for n in (0, 1)}
    try:
        await write(stores[0], 2000, 100)  # warm: scripts loaded, connections open
        print(f"{'batch':>6} {'wall µs/event':>22} {'client CPU µs/event':>22} {'wall ratio':>10}")
        print(f"{'':>6} {'wait 0':>10} {'wait 1':>11} {'wait 0':>10} {'wait 1':>11}")
        for batch in batches:
            figures: dict[int, list[Figure]] = {0: [], 1: []}
            for _ in range(rounds):  # interleaved: drift on a shared machine hits both
                for n in (0, 1):
                    figures[n].append(await write(stores[n], events, batch))
            best = {n: min(f, key=lambda x: x.wall_us) for n, f in figures.items()}
            print(f"{batch:>6} {best[0].wall_us:>10.1f} {best[1].wall_us:>11.1f} "
                  f"{best[0].cpu_us:>10.1f} {best[1].cpu_us:>11.1f} "
                  f"{best[1].wall_us / best[0].wall_us:>10.2f}")
    finally:
        for store in stores.values():
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batches", default="1,50,500",
                        help="batch sizes, comma-separated (the join writes a batch per "
                             "take() of the keyed stream, up to a few hundred events)")
    parser.add_argument("--rounds", type=int, default=3, help="best of N, interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replica-wait-") as scratch:
        default = services.Layout.default()
        layout = services.Layout(Path(scratch), default.cache_dir, 0, free_run(6))
        cluster = clusters.RedisCluster(layout)
        print(clusters.redis_up(cluster))
        try:
            asyncio.run(measure(cluster.url, args.events,
                                [int(b) for b in args.batches.split(",")], args.rounds))
        finally:
            clusters.down(None, cluster)


if __name__ == "__main__":
    main()
