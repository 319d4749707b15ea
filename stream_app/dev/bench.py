"""``stream-app bench``: the performance figures, side by side, on one seeded workload.

Every figure that compares is a ratio measured in the same run on the same events, and
CPU time per event is read from each process's own counters (``/proc/PID/stat``), so a
busy shared machine changes events/s far more than it changes the ratios:

1. **plain aiokafka** consumer + ``orjson.loads`` (in this process);
2. **bare Faust agent** that only decodes the events (``bench_bare.py``, a child), stock
   and with this project's ``faust_compat`` patches and event loop (what one pass through
   Faust costs the worker);
3. **the worker** end to end (intake → keyed topic → join → Redis), a child
   ``stream-app worker`` on fresh topics and a fresh consumer group;
4. **end to end latency**: probe callbacks produced under a steady background load,
   each timed until the reader's ``total_callbacks_received`` shows it;
5. **the reader**: a 366-day range, concurrent clients for a few seconds;
6. **restart**: the worker stopped and started again on its data directory, timed until
   a new callback is counted (table recovery and the group join included);
7. **scale-out**: the workload on twice the partitions, consumed by one worker and then
   by two (each must be given half the partitions); CPU per event summed over the
   workers, the growth from one to two reported;
8. **state** (``--state-contacts N``): a worker filled with one outbound call for each
   of N contacts; its RSS, its data directory, and its restart as in 6.

Nothing here asserts a figure; ``tests/integration/test_bench.py`` runs it at a tiny size
so it cannot rot. Needs Kafka and Redis (``stream-app services up``); starts everything else itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from stream_app.core.counters import ClassifyWrite, CounterStore, InboundWrite
from stream_app.core.matching import UNMATCHED, Decision
from stream_app.dev.bench_bare import decode
from stream_app.dev.processes import StreamAppProcess, check_children
from stream_app.dev.simulate import Kind, Scenario, Traffic, generate, produce
from stream_app.settings import Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class BenchConfig:
    events: int = 200_000
    contacts: int = 50_000
    environments: int = 5
    partitions: int = 3
    seed: int = 1
    reader_clients: int = 16
    reader_seconds: float = 10.0
    probes: int = 100
    background_rate: float = 2000.0
    state_contacts: int = 0
    """If > 0: also fill a worker with one outbound call for each of this many contacts,
    report its RSS and data directory, and time its restart (``make bench``: 1M)."""


@dataclass
class Figures:
    """Everything the bench prints, also written as JSON (``--json FILE``)."""

    date: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    aiokafka: dict[str, float] = field(default_factory=dict)
    bare_faust: dict[str, float] = field(default_factory=dict)
    bare_faust_patched: dict[str, float] = field(default_factory=dict)
    worker: dict[str, float] = field(default_factory=dict)
    end_to_end: dict[str, float] = field(default_factory=dict)
    reader: dict[str, float] = field(default_factory=dict)
    restart: dict[str, float] = field(default_factory=dict)
    scale_out: dict[str, Any] = field(default_factory=dict)
    state: dict[str, float] = field(default_factory=dict)


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

@dataclass
class Topics:
    outbound: str
    inbound: str
    config: str

    def as_kinds(self) -> dict[Kind, str]:
        return {"outbound": self.outbound, "inbound": self.inbound, "config": self.config}


async def create_topics(bootstrap: str, topics: Topics, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=t, num_partitions=partitions,
                                            replication_factor=1)
                                   for t in topics.as_kinds().values()])
        names = set(topics.as_kinds().values())
        while not names <= set(await admin.list_topics()):
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def workload(config: BenchConfig, prefix: str) -> Traffic:
    """About ``config.events`` messages: the simulator sends ≈ 3.9 per callback."""
    return generate(Scenario(seed=config.seed, environments=config.environments,
                             callbacks=max(10, int(config.events / 3.9)),
                             contacts=config.contacts, environment_prefix=prefix))


# -- 1. plain aiokafka ----------------------------------------------------------------

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
        return _rates(seen, time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        await consumer.stop()


def _rates(events: int, wall: float, cpu: float) -> dict[str, float]:
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
        sys.executable, "-m", "stream_app.dev.bench_bare", *(["--patched"] if patched else []),
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
        return _rates(expected - start[0], time.perf_counter() - start[1],
                      cpu_seconds(child.pid) - start[2])
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


# -- 3. the worker ------------------------------------------------------------------------

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

    from stream_app.core.matching import day_bucket, epoch

    calls = {(e.environment_id, e.call_id) for e, _ in traffic.inbound}
    environments = sorted({env for env, _ in calls})
    days = sorted({day_bucket(epoch(e.occurred_at), ZoneInfo("UTC"))
                   for e, _ in traffic.inbound})

    async def done() -> int:
        n = await decided(store, environments, days)
        progress(what, n, len(calls))
        return n

    await poll(done, lambda n: n >= len(calls), 1800, interval=0.2)


async def worker_run(worker: StreamAppProcess, port: int, store: CounterStore, traffic: Traffic,
                     progress: Progress) -> dict[str, float]:
    expected = len(traffic.messages)
    start = await poll(lambda: consumed(port), lambda n: n >= expected * WARM_FRACTION, 300,
                       interval=0.02)
    wall, cpu = time.perf_counter(), cpu_seconds(worker.pid)
    await all_decided(store, traffic, "worker (intake -> keyed -> join -> Redis)", progress)
    figures = _rates(expected - start, time.perf_counter() - wall, cpu_seconds(worker.pid) - cpu)
    figures["rss_mib"] = rss_mib(worker.pid)
    figures["contacts"] = len({(e.environment_id, e.contact_phone) for e, _ in traffic.outbound})
    return figures


# -- 4. end to end --------------------------------------------------------------------------

async def end_to_end(bootstrap: str, topics: Topics, reader_url: str, token: str, env: str,
                     config: BenchConfig, progress: Progress) -> dict[str, float]:
    """Probe callbacks one after another under a steady background load; each is timed
    from just before its send until the reader counts it (polled every 5 ms)."""
    import aiohttp
    from aiokafka import AIOKafkaProducer

    background = generate(Scenario(seed=config.seed + 1, environments=2,
                                   callbacks=int(config.background_rate * 120 / 3.9),
                                   contacts=config.contacts,
                                   environment_prefix=f"bench-bg-{uuid.uuid4().hex[:6]}"))
    load = asyncio.create_task(produce(bootstrap, topics.as_kinds(), background,
                                       rate=config.background_rate))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    samples, missed = [], 0
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession() as http:
            async def received() -> int:
                async with http.get(reader_url, headers=headers) as response:
                    body = await response.json()
                return int(body["data"]["total_callbacks_received"])

            await asyncio.sleep(3.0)  # let the background load reach its rate
            for i in range(config.probes):
                event = probe_event(env, i)
                began = time.perf_counter()
                await producer.send_and_wait(topics.inbound, orjson.dumps(event),
                                             key=event["contact_phone"].encode())
                try:
                    await poll(received, _more_than(i), 10.0, interval=0.005)
                    samples.append(time.perf_counter() - began)
                except TimeoutError:
                    missed += 1
                progress("end to end probes", i + 1, config.probes)
    finally:
        load.cancel()
        await producer.stop()
    return {"probes": config.probes, "not_visible_in_10s": missed,
            **_percentiles(samples), "background_events_per_second": config.background_rate}


def probe_event(env: str, number: int) -> dict[str, str]:
    """A ``received`` callback of a call and contact of its own, today (UTC)."""
    return {"event_id": f"probe-{number}", "environment_id": env, "call_id": f"probe-{number}",
            "type": "received", "callback_agent_id": "probe",
            "contact_phone": f"+1555{number:07d}",
            "occurred_at": f"{date.today().isoformat()}T12:00:00Z"}


# -- 6. restart with the state ---------------------------------------------------------------

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
    run = f"{uuid.uuid4().hex[:8]}-x{count}"
    topics = Topics(f"bench-outbound-{run}", f"bench-inbound-{run}", f"bench-config-{run}")
    await create_topics(bootstrap, topics, partitions)
    traffic = workload(config, f"bench-{run}")
    env = {**base_env, "STREAM_APP_APP_ID": f"bench-scale-{run}",
           "STREAM_APP_PARTITIONS": str(partitions),
           "STREAM_APP_TOPIC_OUTBOUND": topics.outbound,
           "STREAM_APP_TOPIC_INBOUND": topics.inbound,
           "STREAM_APP_TOPIC_CONFIG": topics.config,
           "STREAM_APP_TOPIC_OUTCOMES": f"bench-outcomes-{run}",
           "STREAM_APP_TOPIC_DLQ": f"bench-dlq-{run}"}
    ports = [free_port() for _ in range(count)]
    workers = [StreamAppProcess(["worker"], workdir / f"scale-{run}-{i}.log",
                                {**env, "STREAM_APP_WORKER_WEB_PORT": str(port),
                                 "STREAM_APP_DATA_DIR": str(workdir / f"scale-{run}-{i}")})
               for i, port in enumerate(ports)]
    keyed = f"callback_stats_assigned_partitions{{topic=\"bench-scale-{run}-by-contact\"}}"
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
        figures: dict[str, Any] = _rates(len(traffic.messages), time.perf_counter() - wall,
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
    from stream_app.core.records import contact_key
    from stream_app.core.topics import KeyedPartitioner

    bootstrap = base_env["STREAM_APP_KAFKA_BOOTSTRAP"]
    run = f"{uuid.uuid4().hex[:8]}-state"
    topics = Topics(f"bench-outbound-{run}", f"bench-inbound-{run}", f"bench-config-{run}")
    await create_topics(bootstrap, topics, config.partitions)
    env_id, port, data_dir = f"bench-{run}", free_port(), workdir / f"state-{run}"
    worker = StreamAppProcess(["worker"], workdir / f"state-{run}.log", {
        **base_env, "STREAM_APP_APP_ID": f"bench-{run}",
        "STREAM_APP_TOPIC_OUTBOUND": topics.outbound, "STREAM_APP_TOPIC_INBOUND": topics.inbound,
        "STREAM_APP_TOPIC_CONFIG": topics.config, "STREAM_APP_TOPIC_OUTCOMES": f"bench-oc-{run}",
        "STREAM_APP_TOPIC_DLQ": f"bench-dlq-{run}", "STREAM_APP_WORKER_WEB_PORT": str(port),
        "STREAM_APP_DATA_DIR": str(data_dir)})
    try:
        contacts = config.state_contacts
        now = f"{date.today().isoformat()}T11:00:00Z"
        calls = Traffic(messages=[("outbound", orjson.dumps({
            "event_id": f"s{n}", "environment_id": env_id, "call_id": f"s{n}",
            "agent_id": "outbound", "contact_phone": f"+1{n:010d}", "occurred_at": now}))
            for n in range(contacts)])
        sent = [0]

        def produced(n: int) -> None:
            sent[0] += n
            progress(f"state: producing {contacts:,} outbound calls", sent[0], contacts)

        await produce(bootstrap, topics.as_kinds(), calls, progress=produced)
        await poll(lambda: _consumed_shown(port, contacts, progress), lambda n: n >= contacts,
                   3600, interval=1.0)
        # Every call was forwarded before these callbacks were: once one is counted on
        # each keyed partition, the join has written every row before it.
        partition_of = KeyedPartitioner(config.partitions)
        probes: dict[int, int] = {}
        for n in range(2 * 10**6, 2 * 10**6 + 1000):
            probes.setdefault(partition_of(contact_key(env_id, f"+1555{n:07d}")), n)
        callbacks = Traffic(messages=[("inbound", orjson.dumps(probe_event(env_id, n)))
                                      for n in probes.values()])
        await produce(bootstrap, topics.as_kinds(), callbacks)
        day = date.today().isoformat()
        progress("state: waiting for the join")
        await poll(lambda: store.read_stats(env_id, [day]),
                   lambda st: st.received >= len(probes), 3600, interval=1.0)
        rss = rss_mib(worker.pid)
        worker, restarted = await restart(worker, store, bootstrap, topics, env_id, data_dir,
                                          progress)
        return {"contacts": contacts, "rss_mib": rss, **restarted}
    finally:
        worker.stop()


async def _consumed_shown(port: int, total: int, progress: Progress) -> int:
    n = await consumed(port)
    progress("state: worker consuming", n, total)
    return n


def _more_than(count: int) -> Callable[[int], bool]:
    return lambda n: n > count


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
            "max_ms": ordered[-1] * 1000}


# -- 5. the reader ------------------------------------------------------------------------

READER_START = date(2023, 1, 1)


async def populate_year(store: CounterStore, env: str, calls_per_day: int = 20) -> None:
    for offset in range(366):
        day = READER_START + timedelta(days=offset)
        t = time.mktime(day.timetuple()) + 3600
        await store.record_inbound([InboundWrite(env, f"{day}-{i}", "received", t,
                                                 day.isoformat(), f"e{i}")
                                    for i in range(calls_per_day)])
        await store.classify([ClassifyWrite(env, f"{day}-{i}",
                                            UNMATCHED if i % 5 == 0 else
                                            Decision(f"agent-{i % 7}", f"out-{i}"),
                                            day.isoformat(), "cb")
                              for i in range(calls_per_day)])


async def reader_load(base_url: str, token: str, clients: int, seconds: float,
                      progress: Progress) -> dict[str, float]:
    """``clients`` keep-alive connections, each sending the next request as soon as the
    last answer is read, for ``seconds``.

    Each client is a bare HTTP/1.1 exchange on asyncio streams: a general-purpose client
    (aiohttp's) spends about as much CPU per request as the reader, so on a two-core
    machine the figure would mostly measure the load generator."""
    parts = urlsplit(f"{base_url}?start_date={READER_START}"
                     f"&end_date={READER_START + timedelta(days=365)}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
    samples: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if head[9:12] != b"200":
                    raise RuntimeError(f"bench: the reader answered {head[:12]!r}")
                samples.append(time.perf_counter() - began)
        finally:
            writer.close()

    async def report() -> None:
        while True:
            progress("reader, 366-day range", seconds - (deadline - time.monotonic()), seconds)
            await asyncio.sleep(0.2)

    began = time.perf_counter()
    reporting = asyncio.create_task(report())
    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        reporting.cancel()
    return {"clients": clients, "requests": len(samples),
            "requests_per_second": len(samples) / (time.perf_counter() - began),
            **_percentiles(samples)}


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


# -- the run --------------------------------------------------------------------------------

async def run_bench(config: BenchConfig, settings: Settings,
                    progress: Progress | None = None) -> Figures:
    """Kafka and Redis from ``settings``; everything else is the bench's own (fresh
    topics, consumer groups, environments and a temporary data directory)."""
    progress = progress or Progress()
    bootstrap, redis_url = settings.kafka_bootstrap, settings.redis_url
    run = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix=f"stream-app-bench-{run}-"))
    topics = Topics(f"bench-outbound-{run}", f"bench-inbound-{run}", f"bench-config-{run}")
    figures = Figures(date=time.strftime("%Y-%m-%d"), config=asdict(config))
    traffic = workload(config, f"bench-{run}")
    figures.events = len(traffic.messages)
    await create_topics(bootstrap, topics, config.partitions)
    sent = [0]

    def produced(n: int) -> None:
        sent[0] += n
        progress("producing the workload", sent[0], figures.events)

    await produce(bootstrap, topics.as_kinds(), traffic, progress=produced)
    figures.aiokafka = await plain_aiokafka(bootstrap, topics, figures.events, progress)
    figures.bare_faust = await bare_faust(bootstrap, topics, figures.events, workdir, progress)
    figures.bare_faust_patched = await bare_faust(bootstrap, topics, figures.events, workdir,
                                                  progress, patched=True)

    reader_env, probe_env = f"bench-reader-{run}", f"bench-probe-{run}"
    port, reader_port = free_port(), free_port()
    child_settings = {"KAFKA_BOOTSTRAP": bootstrap, "REDIS_URL": redis_url,
                "APP_ID": f"bench-worker-{run}", "PARTITIONS": str(config.partitions),
                "TOPIC_OUTBOUND": topics.outbound, "TOPIC_INBOUND": topics.inbound,
                "TOPIC_CONFIG": topics.config, "TOPIC_OUTCOMES": f"bench-outcomes-{run}",
                "TOPIC_DLQ": f"bench-dlq-{run}", "MATCH_GRACE_SECONDS": "2",
                "TIMESTAMP_DISORDER_SECONDS": "1", "WORKER_WEB_PORT": str(port),
                "DATA_DIR": str(workdir / "worker"), "READER_PORT": str(reader_port),
                "API_TOKENS": f"bench-reader={reader_env},bench-probe={probe_env}"}
    env = {f"STREAM_APP_{k}": v for k, v in child_settings.items()}
    store = CounterStore.from_url(redis_url, settings.dedup_ttl_seconds)
    worker = StreamAppProcess(["worker"], workdir / "worker.log", env)
    reader = StreamAppProcess(["reader"], workdir / "reader.log", env)
    try:
        figures.worker = await worker_run(worker, port, store, traffic, progress)
        stats_url = f"http://127.0.0.1:{reader_port}/api/v1/callback-agents/stats"
        await populate_year(store, reader_env)
        figures.reader = await reader_load(stats_url, "bench-reader", config.reader_clients,
                                           config.reader_seconds, progress)
        # Right after the workload, while its pending callbacks come due by the thousand:
        # the probes show whether any step holds the worker's loop (the worst lag).
        figures.end_to_end = await end_to_end(bootstrap, topics, stats_url, "bench-probe",
                                              probe_env, config, progress)
        figures.end_to_end["worst_loop_lag_ms"] = 1000 * await metric_value(
            port, "callback_stats_event_loop_lag_max_seconds")
        worker, figures.restart = await restart(worker, store, bootstrap, topics, probe_env,
                                                workdir / "worker", progress)
        worker.stop()
        figures.scale_out = await scale_out(env, store, config, workdir, progress)
        if config.state_contacts:
            figures.state = await large_state(env, store, config, workdir, progress)
    finally:
        worker.stop()
        reader.stop()
        await store.close()
        progress.end()
    shutil.rmtree(workdir, ignore_errors=True)  # kept, with the logs, if anything failed
    _ratios(figures)
    return figures


def _ratios(f: Figures) -> None:
    bare = f.bare_faust.get("cpu_us_per_event")
    if bare and f.worker:
        f.worker["cpu_ratio_to_bare_faust"] = f.worker["cpu_us_per_event"] / bare
        f.worker["rate_ratio_to_bare_faust"] = (f.worker["events_per_second"]
                                                / f.bare_faust["events_per_second"])
        f.worker["rate_ratio_to_aiokafka"] = (f.worker["events_per_second"]
                                              / f.aiokafka["events_per_second"])
    if bare and f.aiokafka:
        f.bare_faust["cpu_ratio_to_aiokafka"] = bare / f.aiokafka["cpu_us_per_event"]
    if bare and f.bare_faust_patched:
        f.bare_faust_patched["cpu_ratio_to_bare_faust"] = (
            f.bare_faust_patched["cpu_us_per_event"] / bare)


GOALS = (("worker CPU per event vs bare Faust", "worker", "cpu_ratio_to_bare_faust", 2.0),
         ("reader p99 (ms), 366 days", "reader", "p99_ms", 10.0),
         ("end to end p99 (ms), right after the workload (catch-up)", "end_to_end",
          "p99_ms", 500.0),
         ("worst event loop lag (ms)", "end_to_end", "worst_loop_lag_ms", 100.0),
         ("restart to first event (s)", "restart", "restart_to_first_event_s", 30.0),
         ("scale-out CPU per event growth (%), 1 -> 2 workers", "scale_out",
          "cpu_growth_percent", 10.0),
         ("restart with the large state to first event (s)", "state",
          "restart_to_first_event_s", 30.0))


def report(f: Figures) -> str:
    """The figures as a Markdown table (what the README's Benchmarks section shows)."""
    def row(what: str, part: dict[str, float]) -> str:
        if not part:
            return f"| {what} | - | - | - |"
        return (f"| {what} | {part['events_per_second']:,.0f} | "
                f"{part['cpu_us_per_event']:,.0f} | "
                f"{part['cpu_us_per_event'] / f.bare_faust['cpu_us_per_event']:.2f}x |")

    lines = [f"bench {f.date}: {f.events:,} events, {f.config['partitions']} partitions, "
             f"{f.config['environments']} environments, {f.config['contacts']:,} contacts",
             "", "| consumer | events/s | CPU µs/event | CPU vs bare Faust |",
             "|---|---|---|---|", row("plain aiokafka + orjson.loads", f.aiokafka),
             row("bare Faust agent (decode only)", f.bare_faust),
             row("same, with this project's Faust patches and uvloop",
                 f.bare_faust_patched),
             row("worker end to end", f.worker), ""]
    if f.worker:
        lines.append(f"worker RSS {f.worker['rss_mib']:.0f} MiB with "
                     f"{f.worker['contacts']:,.0f} contacts")
    if f.reader:
        lines.append(f"reader, 366-day range, {f.reader['clients']:.0f} clients: "
                     f"{f.reader['requests_per_second']:,.0f} req/s, p50 "
                     f"{f.reader['p50_ms']:.1f} ms, p99 {f.reader['p99_ms']:.1f} ms")
    if f.end_to_end:
        e = f.end_to_end
        lines.append(f"end to end under {e['background_events_per_second']:,.0f} events/s: "
                     f"p50 {e.get('p50_ms', 0):.0f} ms, p99 {e.get('p99_ms', 0):.0f} ms, "
                     f"max {e.get('max_ms', 0):.0f} ms, "
                     f"{e['not_visible_in_10s']:.0f} of {e['probes']:.0f} not visible in 10 s; "
                     f"worst event loop lag {e.get('worst_loop_lag_ms', 0):.0f} ms")
    if f.restart:
        lines.append(f"restart with that state ({f.restart['state_disk_mib']:.0f} MiB on disk) "
                     f"to the first new event counted: "
                     f"{f.restart['restart_to_first_event_s']:.1f} s")
    if f.scale_out:
        o = f.scale_out
        one, two = o["workers_1"], o["workers_2"]
        lines.append(f"scale-out on {o['partitions']} partitions: 1 worker "
                     f"{one['cpu_us_per_event']:,.0f} µs/event, 2 workers "
                     f"{two['cpu_us_per_event']:,.0f} µs/event "
                     f"({o['cpu_growth_percent']:+.1f}%), keyed partitions per worker "
                     f"{two['keyed_partitions_per_worker']}, events per worker "
                     f"{two['events_per_worker']}")
    if f.state:
        lines.append(f"state: {f.state['contacts']:,.0f} contacts, worker RSS "
                     f"{f.state['rss_mib']:.0f} MiB, {f.state['state_disk_mib']:.1f} MiB on "
                     f"disk; restart to the first new event counted: "
                     f"{f.state['restart_to_first_event_s']:.1f} s")
    lines.append("")
    for what, part, key, goal in GOALS:
        value = getattr(f, part).get(key)
        verdict = "-" if value is None else ("met" if value <= goal else "NOT met")
        shown = "-" if value is None else f"{value:,.2f}"
        lines.append(f"goal {what} ≤ {goal:g}: {shown} ({verdict})")
    return "\n".join(lines)


def write_json(f: Figures, path: Path) -> None:
    path.write_bytes(orjson.dumps(asdict(f), option=orjson.OPT_INDENT_2))
