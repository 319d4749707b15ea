"""Failover at scale: two workers share a large join state, one is SIGKILLed, and the
survivor is timed until it counts callbacks of every keyed partition again.

What that time is made of: the group noticing the death (the session timeout,
``STREAM_APP_SESSION_TIMEOUT_SECONDS``), the rebalance, then the survivor restoring the
dead worker's table partitions from their changelogs before it processes them — the
whole changelog without a standby replica, only its tail with one
(``STREAM_APP_STANDBY_REPLICAS=1``: each worker keeps a copy of the other's tables).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from stream_app.core.store.counters import CounterStore
from stream_app.dev.bench.config import BenchConfig
from stream_app.dev.bench.measure import Progress, consumed, free_port, metric, poll
from stream_app.dev.bench.workload import Topics, fresh_app, probe_event
from stream_app.dev.processes import StreamAppProcess
from stream_app.dev.simulate import Traffic, produce

STANDBY_CATCH_UP_SECONDS = 15.0
"""Time given to the standbys to replay the changelogs before the kill (Faust exposes no
standby lag; a standby that is behind only makes the figure worse)."""


async def fill_contacts(bootstrap: str, topics: Topics, env_id: str, contacts: int,
                        progress: Progress, what: str) -> None:
    """One outbound call, today, for each of ``contacts`` contacts of ``env_id``."""
    now = f"{date.today().isoformat()}T11:00:00Z"
    calls = Traffic(messages=[("outbound", orjson.dumps({
        "event_id": f"s{n}", "environment_id": env_id, "call_id": f"s{n}",
        "agent_id": "outbound", "contact_phone": f"+1{n:010d}", "occurred_at": now}))
        for n in range(contacts)])
    sent = [0]

    def produced(n: int) -> None:
        sent[0] += n
        progress(f"{what}: producing {contacts:,} outbound calls", sent[0], contacts)

    await produce(bootstrap, topics.as_kinds(), calls, progress=produced)


async def counted_on_every_partition(bootstrap: str, topics: Topics, store: CounterStore,
                                     env_id: str, partitions: int, first: int,
                                     progress: Progress, what: str) -> None:
    """Produce one callback per keyed partition (numbers from ``first``) and wait until
    all are counted: every record a partition held before them has been joined."""
    from stream_app.core.domain.records import contact_key
    from stream_app.core.kafka.topics import KeyedPartitioner

    partition_of = KeyedPartitioner(partitions)
    probes: dict[int, int] = {}
    for n in range(first, first + 100 * partitions):
        probes.setdefault(partition_of(contact_key(env_id, f"+1555{n:07d}")), n)
    day = date.today().isoformat()
    before = (await store.read_stats(env_id, [day])).received
    await produce(bootstrap, topics.as_kinds(), Traffic(messages=[
        ("inbound", orjson.dumps(probe_event(env_id, n))) for n in probes.values()]))
    progress(what)
    await poll(lambda: store.read_stats(env_id, [day]),
               lambda st: st.received >= before + len(probes), 3600, interval=0.1)


async def failover(base_env: dict[str, str], store: CounterStore, config: BenchConfig,
                   workdir: Path, progress: Progress) -> dict[str, Any]:
    figures: dict[str, Any] = {"contacts": config.failover_contacts,
                               "partitions": config.partitions * 2,
                               "session_timeout_s": config.failover_session_timeout}
    for standby in (0, 1):
        figures[f"standby_{standby}"] = await _failover(base_env, store, config, workdir,
                                                        standby, progress)
    figures["best_kill_to_every_partition_counted_s"] = min(
        figures[f"standby_{n}"]["kill_to_every_partition_counted_s"] for n in (0, 1))
    return figures


async def _failover(base_env: dict[str, str], store: CounterStore, config: BenchConfig,
                    workdir: Path, standby: int, progress: Progress) -> dict[str, float]:
    bootstrap = base_env["STREAM_APP_KAFKA_BOOTSTRAP"]
    partitions = config.partitions * 2
    run, topics, app = await fresh_app(base_env, f"failover{standby}", partitions)
    env_id, what = f"bench-{run}", f"failover, standby replicas {standby}"
    env = {**app, "STREAM_APP_STANDBY_REPLICAS": str(standby),
           "STREAM_APP_SESSION_TIMEOUT_SECONDS": str(config.failover_session_timeout)}
    ports = [free_port(), free_port()]
    workers = [StreamAppProcess(["worker"], workdir / f"{run}-{i}.log",
                                {**env, "STREAM_APP_WORKER_WEB_PORT": str(port),
                                 "STREAM_APP_DATA_DIR": str(workdir / f"{run}-{i}")})
               for i, port in enumerate(ports)]
    keyed = f"callback_stats_assigned_partitions{{topic=\"bench-{run}-by-contact\"}}"
    try:
        async def shares() -> list[int]:
            return list(await asyncio.gather(*(metric(port, keyed) for port in ports)))

        progress(f"{what}: waiting for the assignment")
        await poll(shares, lambda got: got == [partitions // 2] * 2, 180, interval=0.2)
        await fill_contacts(bootstrap, topics, env_id, config.failover_contacts, progress, what)
        await poll(lambda: _consumed(ports), lambda n: n >= config.failover_contacts, 3600,
                   interval=1.0)
        await counted_on_every_partition(bootstrap, topics, store, env_id, partitions,
                                         2 * 10**6, progress, f"{what}: waiting for the join")
        if standby:
            progress(f"{what}: letting the standbys catch up")
            await asyncio.sleep(STANDBY_CATCH_UP_SECONDS)
        progress(f"{what}: SIGKILL one worker")
        began = time.perf_counter()
        workers[1].kill()

        async def assigned_after() -> float:
            await poll(lambda: metric(ports[0], keyed), lambda n: n == partitions, 600,
                       interval=0.1)
            return time.perf_counter() - began

        taken_over = asyncio.create_task(assigned_after())
        await counted_on_every_partition(bootstrap, topics, store, env_id, partitions,
                                         3 * 10**6, progress, f"{what}: the survivor counting")
        counted = time.perf_counter() - began
        return {"kill_to_survivor_assigned_s": await taken_over,
                "kill_to_every_partition_counted_s": counted}
    finally:
        for worker in workers:
            worker.stop()


async def _consumed(ports: list[int]) -> int:
    return sum(await asyncio.gather(*(consumed(p) for p in ports)))
