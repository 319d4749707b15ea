"""The worker's figures: throughput, end-to-end latency, restart, scale-out, state."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from stream_app.core.store.counters import CounterStore
from stream_app.dev.bench.baselines import WARM_FRACTION, rates
from stream_app.dev.bench.config import BenchConfig
from stream_app.dev.bench.failover import counted_on_every_partition, fill_contacts
from stream_app.dev.bench.measure import (
    Progress,
    all_decided,
    consumed,
    consumed_shown,
    cpu_seconds,
    free_port,
    metric,
    more_than,
    percentiles,
    poll,
    rss_mib,
)
from stream_app.dev.bench.workload import Topics, fresh_app, probe_event, workload
from stream_app.dev.processes import StreamAppProcess
from stream_app.dev.simulate import Scenario, Traffic, generate, produce


async def worker_run(worker: StreamAppProcess, port: int, store: CounterStore, traffic: Traffic,
                     progress: Progress) -> dict[str, float]:
    expected = len(traffic.messages)
    start = await poll(lambda: consumed(port), lambda n: n >= expected * WARM_FRACTION, 300,
                       interval=0.02)
    wall, cpu = time.perf_counter(), cpu_seconds(worker.pid)
    await all_decided(store, traffic, "worker (intake -> keyed -> join -> Redis)", progress)
    figures = rates(expected - start, time.perf_counter() - wall, cpu_seconds(worker.pid) - cpu)
    figures["rss_mib"] = rss_mib(worker.pid)
    figures["contacts"] = len({(e.environment_id, e.contact_phone) for e, _ in traffic.outbound})
    return figures


# -- 4. end to end --------------------------------------------------------------------------

async def end_to_end(bootstrap: str, topics: Topics, reader_url: str, token: str, env: str,
                     config: BenchConfig, progress: Progress,
                     replay: Traffic | None = None) -> dict[str, float]:
    """Probe callbacks one after another under a steady background load; each is timed
    from just before its send until the reader counts it (polled every 5 ms).

    The load is fresh events (new calls), or with ``replay`` the workload's own events
    sent again: duplicates with old timestamps, as a consumer group reset or an upstream
    retry storm sends them. Under a replay the probes are callbacks of ONE contact, whose
    state grows with every probe."""
    import aiohttp
    from aiokafka import AIOKafkaProducer

    background = replay or generate(Scenario(
        seed=config.seed + 1, environments=2, callbacks=int(config.background_rate * 120 / 3.9),
        contacts=config.contacts, environment_prefix=f"bench-bg-{uuid.uuid4().hex[:6]}"))
    load = asyncio.create_task(produce(bootstrap, topics.as_kinds(), background,
                                       rate=config.background_rate))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    samples, missed = [], 0
    headers = {"Authorization": f"Bearer {token}"}
    what = "end to end probes" + (" (replayed load, one contact)" if replay else "")
    try:
        async with aiohttp.ClientSession() as http:
            async def received() -> int:
                async with http.get(reader_url, headers=headers) as response:
                    body = await response.json()
                return int(body["data"]["total_callbacks_received"])

            await asyncio.sleep(3.0)  # let the background load reach its rate
            before = await received()
            for i in range(config.probes):
                event = probe_event(env, i + (10**5 if replay else 0), one_contact=bool(replay))
                began = time.perf_counter()
                await producer.send_and_wait(topics.inbound, orjson.dumps(event),
                                             key=event["contact_phone"].encode())
                try:
                    await poll(received, more_than(before + i), 10.0, interval=0.005)
                    samples.append(time.perf_counter() - began)
                except TimeoutError:
                    missed += 1
                progress(what, i + 1, config.probes)
    finally:
        load.cancel()
        await producer.stop()
    slowest = sorted(samples)[-5:]
    return {"probes": config.probes, "not_visible_in_10s": missed, **percentiles(samples),
            **({"fifth_slowest_ms": slowest[0] * 1000} if slowest else {}),
            "background_events_per_second": config.background_rate}


async def restart(worker: StreamAppProcess, store: CounterStore, bootstrap: str,
                  topics: Topics, env: str, data_dir: Path, progress: Progress
                  ) -> tuple[StreamAppProcess, dict[str, float]]:
    """Stop the worker, start it again on its data directory, and time it until a new
    callback is counted: recovery of the tables and the group join included."""
    from aiokafka import AIOKafkaProducer

    progress("restart with the state")
    worker.stop()
    disk = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())
    day = date.today().isoformat()
    before = (await store.read_stats(env, [day])).received
    began = time.perf_counter()
    again = worker.again()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        event = probe_event(env, 10**6)
        await producer.send_and_wait(topics.inbound, orjson.dumps(event),
                                     key=event["contact_phone"].encode())
    finally:
        await producer.stop()
    await poll(lambda: store.read_stats(env, [day]), lambda st: st.received > before, 300)
    return again, {"state_disk_mib": disk / 2**20,
                   "restart_to_first_event_s": time.perf_counter() - began}


# -- 7. scale-out ---------------------------------------------------------------------------

async def scale_out(base_env: dict[str, str], store: CounterStore, config: BenchConfig,
                    workdir: Path, progress: Progress) -> dict[str, Any]:
    """The workload on twice the partitions, consumed by one worker, then (fresh topics and
    group) by two. The workers start first and are given their partitions, then the
    workload is produced; CPU is every worker's, from the assignment to the last
    callback decided."""
    figures: dict[str, Any] = {"partitions": config.partitions * 2}
    for count in (1, 2):
        figures[f"workers_{count}"] = await _scaled(base_env, store, config, workdir, count,
                                                    progress)
    one, two = figures["workers_1"], figures["workers_2"]
    figures["cpu_growth_percent"] = (two["cpu_us_per_event"] / one["cpu_us_per_event"] - 1) * 100
    return figures


async def _scaled(base_env: dict[str, str], store: CounterStore, config: BenchConfig,
                  workdir: Path, count: int, progress: Progress) -> dict[str, Any]:
    bootstrap = base_env["STREAM_APP_KAFKA_BOOTSTRAP"]
    partitions = config.partitions * 2
    run, topics, env = await fresh_app(base_env, f"scale{count}", partitions)
    traffic = workload(config, f"bench-{run}")
    ports = [free_port() for _ in range(count)]
    workers = [StreamAppProcess(["worker"], workdir / f"{run}-{i}.log",
                                {**env, "STREAM_APP_WORKER_WEB_PORT": str(port),
                                 "STREAM_APP_DATA_DIR": str(workdir / f"{run}-{i}")})
               for i, port in enumerate(ports)]
    keyed = f"callback_stats_assigned_partitions{{topic=\"bench-{run}-by-contact\"}}"
    what = f"scale-out, {count} worker{'s' if count > 1 else ''} on {partitions} partitions"
    try:
        async def shares() -> list[int]:
            progress(f"{what}: waiting for the assignment")
            return list(await asyncio.gather(*(metric(port, keyed) for port in ports)))

        share = await poll(shares, lambda got: got == [partitions // count] * count, 180,
                           interval=0.2)
        wall, cpu = time.perf_counter(), sum(cpu_seconds(w.pid) for w in workers)
        await produce(bootstrap, topics.as_kinds(), traffic)
        await all_decided(store, traffic, what, progress)
        figures: dict[str, Any] = rates(len(traffic.messages), time.perf_counter() - wall,
                                         sum(cpu_seconds(w.pid) for w in workers) - cpu)
        figures["keyed_partitions_per_worker"] = share
        figures["events_per_worker"] = list(await asyncio.gather(*(consumed(p) for p in ports)))
        return figures
    finally:
        for worker in workers:
            worker.stop()


# -- 8. a large state -------------------------------------------------------------------------

async def large_state(base_env: dict[str, str], store: CounterStore, config: BenchConfig,
                      workdir: Path, progress: Progress) -> dict[str, float]:
    """One outbound call for each of ``config.state_contacts`` contacts through a worker
    of its own; once its join has written them all, its RSS and a restart."""
    bootstrap = base_env["STREAM_APP_KAFKA_BOOTSTRAP"]
    run, topics, env = await fresh_app(base_env, "state", config.partitions)
    env_id, port, data_dir = f"bench-{run}", free_port(), workdir / run
    worker = StreamAppProcess(["worker"], workdir / f"{run}.log", {
        **env, "STREAM_APP_WORKER_WEB_PORT": str(port), "STREAM_APP_DATA_DIR": str(data_dir)})
    try:
        contacts = config.state_contacts
        await fill_contacts(bootstrap, topics, env_id, contacts, progress, "state")
        await poll(lambda: consumed_shown(port, contacts, progress), lambda n: n >= contacts,
                   3600, interval=1.0)
        # Every call was forwarded before these callbacks were: once one is counted on
        # each keyed partition, the join has written every row before it.
        await counted_on_every_partition(bootstrap, topics, store, env_id, config.partitions,
                                         2 * 10**6, progress, "state: waiting for the join")
        rss = rss_mib(worker.pid)
        worker, restarted = await restart(worker, store, bootstrap, topics, env_id, data_dir,
                                          progress)
        return {"contacts": contacts, "rss_mib": rss, **restarted}
    finally:
        worker.stop()
