"""The fault matrix: one service dies at a random instant under steady traffic.

Each run gets a Kafka broker and a Redis of its own matrix (``stream-app services`` on
free ports in a scratch directory, so killing them disturbs nothing else), fresh topics
and a fresh consumer group, and a workload from the simulator produced at a steady rate
by a producer that retries what an outage made fail. At a random instant one fault
hits; the service is restarted after ``outage`` seconds, with no other manual step. The
run is **exact** when, once the traffic is over, the audit finds no committed input
offset left unprocessed, and every counter (received, answered, unmatched, by source,
per environment and day) and every outcome record equals the oracle computed from the
input topics as they are, with their record timestamps (the contract's rule: a broker
outage delays records, so the emission order is not the reference).

Faults: ``broker-sigterm``, ``broker-sigkill``, ``broker-freeze`` (SIGSTOP, then
SIGCONT: a long GC pause or a frozen VM), ``redis-sigkill``, ``worker-sigkill``,
``workers-3`` (three workers, one SIGKILLed, one SIGTERMed, both restarted); on a cluster
(see :data:`FAULTS`): ``cluster-broker-sigkill`` (one of three brokers, restarted after
the outage), ``cluster-redis-master-sigkill`` (the master of the first environment's
slot: its replica is promoted; the old master restarts as a replica) and
``cluster-workers-3`` (two workers, one SIGKILLed and a third added mid-stream, the
killed one restarted). A short
run of the broker SIGKILL case is in the test suite (``tests/integration/test_faults.py``);
``make faults`` runs the whole matrix and prints its table:

    python -m benchmarks.faults --runs 3 --faults broker-sigkill,redis-sigkill
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from stream_app.core.ops.audit import audit
from stream_app.core.store.counters import CounterStore
from stream_app.dev.simulate import Scenario, Traffic, generate
from tests.support import (
    WorkerProcess,
    free_port,
    outcome_counts,
    poll,
    published_problems,
    read_topic,
    stored_counts,
    truth_counts,
    truth_from_topics,
    worker_env,
)
from tests.topology import Services, own_services

FAULTS = ("broker-sigterm", "broker-sigkill", "broker-freeze", "redis-sigkill",
          "worker-sigkill", "workers-3", "cluster-broker-sigkill",
          "cluster-redis-master-sigkill", "cluster-workers-3")
"""``cluster-*``: on three brokers (topics with three replicas) and a Redis Cluster of
three masters with a replica each, the worker waiting for a replica (``WAIT``)."""


@dataclass
class FaultRun:
    fault: str
    seed: int
    messages: int = 0
    hit_at: float = 0.0
    """Seconds into the traffic when the fault hit."""
    restored_at: float = 0.0
    recovery_seconds: float | None = None
    """From the restart of what died until every counter equals the oracle."""
    exact: bool = False
    missing_offsets: int | None = None
    log_lines: int = 0
    failed_sends: int = 0
    duplicates: int | None = None
    """Outcome records a subscriber reading the topic from the start saw again (an id
    it had seen): what at-least-once delivery cost it in this run."""
    restarts: dict[str, int] = field(default_factory=dict)
    """Workers the supervisor restarted, by reason (exited, liveness)."""
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    worker_errors: list[str] = field(default_factory=list)
    """The workers' ERROR lines and the task dump of any stall they logged: what a failed
    run prints, since its scratch directory (and the logs in it) is gone after it."""

    def line(self) -> str:
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f}s"
        return (f"{self.fault} seed={self.seed}: {self.messages} messages, hit at "
                f"{self.hit_at:.1f}s, exact={self.exact}, recovery {recovery}, audit "
                f"missing={self.missing_offsets}, {self.log_lines} log lines, "
                f"{self.failed_sends} sends retried, restarts {self.restarts}, "
                f"duplicate outcomes {self.duplicates}")


class SteadyProducer:
    """Sends the traffic at a steady rate; a send an outage failed is sent again later
    (a duplicate on the topic at worst, which the processor must absorb anyway)."""

    def __init__(self, bootstrap: str, topics: dict[str, str], traffic: Traffic) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.traffic = traffic
        self.sent = 0
        self.retried = 0

    async def run(self, seconds: float) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=10,
                                    acks="all", request_timeout_ms=10_000,
                                    retry_backoff_ms=500)
        await producer.start()
        try:
            rate = len(self.traffic.messages) / seconds
            began = time.monotonic()
            pending: list[tuple[int, asyncio.Future[Any]]] = []
            for i, (kind, value) in enumerate(self.traffic.messages):
                pending.append((i, await self._send(producer, kind, value)))
                ahead = (i + 1) / rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await self._settle(producer, pending)
        finally:
            await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, kind: str,
                    value: bytes) -> asyncio.Future[Any]:
        while True:
            try:
                return await producer.send(self.topics[kind], value)
            except Exception:  # the buffer is full or the metadata is gone: wait
                await asyncio.sleep(0.5)

    async def _settle(self, producer: AIOKafkaProducer,
                      pending: list[tuple[int, asyncio.Future[Any]]]) -> None:
        while pending:
            again = []
            for i, future in pending:
                try:
                    await future
                    self.sent += 1
                except Exception:
                    self.retried += 1
                    kind, value = self.traffic.messages[i]
                    again.append((i, await self._send(producer, kind, value)))
            pending = again


async def run_fault(fault: str, own: Services, workdir: Path, *, seed: int,
                    seconds: float = 30.0, callbacks: int = 600, outage: float = 10.0,
                    grace: float = 5.0, settle_timeout: float = 180.0,
                    worker_settings: dict[str, Any] | None = None,
                    hit_window: tuple[float, float] = (0.05, 0.5), warmup: float = 0.0,
                    log: Callable[[str], None] = print) -> FaultRun:
    """One run of ``fault`` (see the module doc)."""
    rnd = random.Random(seed)
    scenario = Scenario(seed=seed, environments=2, callbacks=callbacks,
                        contacts=max(50, callbacks // 4),
                        environment_prefix=f"fault-{uuid.uuid4().hex[:6]}")
    traffic = generate(scenario)
    result = FaultRun(fault, seed, len(traffic.messages))
    count = 3 if fault.endswith("workers-3") else 1
    base = worker_env(own.kafka, own.redis_url, workdir / "w0", match_grace_seconds=grace,
                      **{**own.worker_settings(), **(worker_settings or {})})
    pool = []
    for i in range(count):
        (workdir / f"w{i}").mkdir(parents=True, exist_ok=True)
        pool.append(WorkerProcess({**base, "STREAM_APP_DATA_DIR": str(workdir / f"w{i}"),
                                   "STREAM_APP_WORKER_WEB_PORT": str(free_port())}))
    s = pool[0].settings
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
              "config": s.topic_config}
    for worker in pool[:2] if fault == "cluster-workers-3" else pool:
        worker.start()  # cluster-workers-3: the third joins mid-stream
    await asyncio.sleep(warmup)
    sender = SteadyProducer(own.kafka, topics, traffic)
    began = time.monotonic()
    supervisor = Supervisor(pool)
    watching = asyncio.create_task(supervisor.run())
    try:
        sending = asyncio.create_task(sender.run(seconds))
        result.hit_at = rnd.uniform(*hit_window) * seconds
        await asyncio.sleep(result.hit_at)
        await _inject(fault, own, pool, rnd, outage, f"{scenario.environment_prefix}-1")
        result.restored_at = time.monotonic() - began
        log(f"  {fault}: hit at {result.hit_at:.1f}s, restored at {result.restored_at:.1f}s")
        await sending
        result.failed_sends = sender.retried
        await _settle(result, s, own, began, settle_timeout)
        try:
            result.missing_offsets = (await audit(s)).missing
        except Exception as exc:  # e.g. the group never committed anything
            result.notes.append(f"audit failed: {exc!r}")
        result.exact = result.exact and result.missing_offsets == 0
    finally:
        watching.cancel()
        result.restarts = supervisor.restarts
        for worker in pool:
            worker.stop()
        result.log_lines = sum(_lines(w.log) for w in pool)
        result.worker_errors = [line for w in pool for line in worker_errors(w.log)]
    return result


class Supervisor:
    """What runs the workers in production (systemd, Kubernetes, compose's ``restart``):
    a worker that exited is started again, and one whose liveness probe (``/healthz``)
    fails is killed and started again. Each restart is counted by its reason, so a run
    that needed one shows it."""

    def __init__(self, pool: list[WorkerProcess]) -> None:
        self.pool = pool
        self.restarts: dict[str, int] = {"exited": 0, "liveness": 0}

    async def run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            while True:
                await asyncio.sleep(1.0)
                for worker in self.pool:
                    if worker.wanted and not worker.alive():
                        self.restarts["exited"] += 1
                        worker.start()
                    elif worker.alive() and await _stalled(http, worker):
                        self.restarts["liveness"] += 1
                        worker.kill()
                        worker.start()


async def _stalled(http: Any, worker: WorkerProcess) -> bool:
    url = f"http://127.0.0.1:{worker.env['STREAM_APP_WORKER_WEB_PORT']}/healthz"
    try:
        async with http.get(url, timeout=2) as response:
            return bool(response.status == 503)
    except Exception:  # not serving yet (starting) or busy: not a liveness verdict
        return False


async def _inject(fault: str, own: Services, pool: list[WorkerProcess], rnd: random.Random,
                  outage: float, environment: str) -> None:
    loop = asyncio.get_running_loop()
    if fault == "cluster-broker-sigkill":
        await loop.run_in_executor(None, own.kill_broker, rnd.randrange(3))
        await asyncio.sleep(outage)
        await loop.run_in_executor(None, own.restart_brokers)
    elif fault == "cluster-redis-master-sigkill":
        port = await loop.run_in_executor(None, own.master_port_of, environment)
        await loop.run_in_executor(None, own.kill_redis_node, port)
        await asyncio.sleep(outage)
        await loop.run_in_executor(None, own.restart_redis_nodes)
    elif fault.startswith("broker-") or fault == "redis-sigkill":
        name = "redis" if fault == "redis-sigkill" else "kafka"
        sig = signal.SIGTERM if fault.endswith("sigterm") else signal.SIGKILL
        await loop.run_in_executor(None, own.kill, name, sig)
        await asyncio.sleep(outage)
        await loop.run_in_executor(None, own.start, name)
    elif fault == "broker-freeze":  # SIGSTOP: a GC pause, a frozen VM; sockets stay open
        own.freeze("kafka", signal.SIGSTOP)
        await asyncio.sleep(outage)
        own.freeze("kafka", signal.SIGCONT)
    elif fault == "worker-sigkill":
        pool[0].kill()
        await asyncio.sleep(rnd.uniform(0.5, 3.0))
        pool[0].start()
    elif fault == "cluster-workers-3":
        victim = rnd.choice(pool[:2])
        victim.kill()
        await asyncio.sleep(rnd.uniform(1.0, 4.0))
        pool[2].start()
        await asyncio.sleep(rnd.uniform(1.0, 4.0))
        victim.start()
    elif fault.endswith("workers-3"):
        victims = rnd.sample(pool, 2)
        victims[0].kill()
        await asyncio.sleep(rnd.uniform(1.0, 4.0))
        victims[1].stop()
        await asyncio.sleep(rnd.uniform(1.0, 4.0))
        for worker in victims:
            worker.start()
    else:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")


async def _settle(result: FaultRun, settings: Any, own: Services, began: float,
                  settle_timeout: float) -> None:
    """Wait until every counter and the outcome records equal the oracle on the topics.

    Both are polled: a batch's outcome records are delivered after its Redis writes
    returned (both before its offsets are committed), so the counters may be exact a
    few milliseconds before the last outcome records are on the topic. A difference
    that stays until the timeout is a mismatch."""
    truth = {e: d for e, d in (await truth_from_topics(settings)).items()
             if e.startswith("fault-")}
    wanted = truth_counts(truth)
    store = CounterStore.from_url(own.redis_url, 3600, cluster=bool(own.redis_cluster))

    async def counts() -> dict[str, dict[str, tuple]]:
        try:
            return await stored_counts(store, wanted)
        except Exception as exc:  # Redis still away: not there yet
            return {"error": {"": (repr(exc),)}}

    async def outcomes() -> dict[str, dict[str, tuple]]:
        published = outcome_counts(await read_topic(settings.kafka_bootstrap,
                                                    settings.topic_outcomes))
        return {e: d for e, d in published.items() if e in wanted}

    try:
        await poll(counts, lambda c: c == wanted, timeout=settle_timeout, interval=0.5,
                   what="every counter equal to the oracle")
        result.recovery_seconds = time.monotonic() - began - result.restored_at
        result.exact = True
    except AssertionError:
        got = await counts()
        result.mismatches = [f"{e} {d}: got {got.get(e, {}).get(d)}, oracle {v}"
                             for e, days in wanted.items() for d, v in days.items()
                             if got.get(e, {}).get(d) != v]
    finally:
        await store.close()
    counted = time.monotonic()
    try:
        await poll(outcomes, lambda o: o == wanted, timeout=30.0, interval=0.5,
                   what="the outcome records equal to the oracle")
        if time.monotonic() - counted > 1.0:
            result.notes.append(f"the outcome records were complete "
                                f"{time.monotonic() - counted:.1f} s after the counters")
        result.duplicates = duplicate_outcomes(await read_topic(settings.kafka_bootstrap,
                                                                 settings.topic_outcomes))
        _, problems = await published_problems(settings.kafka_bootstrap, {
            settings.topic_outcomes, settings.topic_stats, settings.topic_dlq})
        if problems:
            result.exact = False
            result.notes.append("published records break their schemas: " +
                                "; ".join(problems[:5]))
    except AssertionError:
        published = await outcomes()
        result.exact = False
        result.notes.append("outcome records differ from the oracle: " + "; ".join(
            f"{e} {d}: published {published.get(e, {}).get(d)}, oracle {v}"
            for e, days in wanted.items() for d, v in days.items()
            if published.get(e, {}).get(d) != v)[:2000])


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


def worker_errors(path: Path, limit: int = 60) -> list[str]:
    """The ERROR lines of a worker's log (each distinct message once), then every stall's
    task dump without the tasks only sleeping (timers, idle loops)."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    errors: dict[str, str] = {}
    dumps: list[str] = []
    for i, line in enumerate(lines):
        if "[ERROR]" not in line:
            continue
        errors.setdefault(line.split("[ERROR]", 1)[1][:160], line[:300])
        if "where every task waits" in line:
            dumps += [line, *_busy_tasks(lines[i + 1:])]
    return list(errors.values())[:limit] + dumps


def _busy_tasks(lines: list[str]) -> list[str]:
    """The tasks of a task dump (up to the next log line) not waiting in a sleep."""
    kept: list[str] = []
    task: list[str] = []
    for line in lines:
        if line.startswith("["):
            break
        if line.startswith("-- task") or line.startswith("== loop"):
            kept += task if not any("in sleep" in t for t in task[-1:]) else []
            task = [line]
        else:
            task.append(line)
    return kept + (task if not any("in sleep" in t for t in task[-1:]) else [])


def _count(n: int | None) -> str:
    return "-" if n is None else str(n)


def duplicate_outcomes(records: list[Any]) -> int:
    """Records whose id an earlier record of the topic already had."""
    ids = [orjson.loads(r.value)["id"] for r in records]
    return len(ids) - len(set(ids))


def table(runs: list[FaultRun]) -> str:
    """fault | runs | exact | recovery (median, max) | log lines (max) | restarts |
    duplicate outcome records a subscriber saw (each run's)."""
    rows = ["| fault | runs | exact | recovery median | recovery max | log lines max "
            "| restarts (exited / liveness) | duplicate outcomes per run |",
            "|---|---|---|---|---|---|---|---|"]
    for fault in dict.fromkeys(r.fault for r in runs):
        mine = [r for r in runs if r.fault == fault]
        times = sorted(r.recovery_seconds for r in mine if r.recovery_seconds is not None)
        median = f"{times[len(times) // 2]:.1f} s" if times else "-"
        worst = f"{times[-1]:.1f} s" if times else "-"
        rows.append(f"| {fault} | {len(mine)} | {sum(r.exact for r in mine)}/{len(mine)} | "
                    f"{median} | {worst} | {max(r.log_lines for r in mine)} | "
                    f"{sum(r.restarts.get('exited', 0) for r in mine)} / "
                    f"{sum(r.restarts.get('liveness', 0) for r in mine)} | "
                    f"{', '.join(_count(r.duplicates) for r in mine)} |")
    return "\n".join(rows)


async def matrix(faults: list[str], runs: int, seed: int, keep: Path | None = None,
                 reuse: bool = False, **kwargs: Any) -> list[FaultRun]:
    """Every fault ``runs`` times; the workers' logs are kept under ``keep`` if given.
    ``reuse``: the runs of a fault share topics, consumer group and data directory, as a
    long-lived deployment does (each run adds traffic; the oracle covers all of it)."""
    results = []
    for cluster in (False, True):
        mine = [f for f in faults if f.startswith("cluster-") == cluster]
        if mine:
            with own_services(cluster=cluster) as own:
                results += await _faults_on(own, mine, runs, seed, keep, reuse, **kwargs)
    return results


async def _faults_on(own: Services, faults: list[str], runs: int, seed: int,
                     keep: Path | None, reuse: bool, **kwargs: Any) -> list[FaultRun]:
    results = []
    with tempfile.TemporaryDirectory(prefix="fault-runs-") as shared:
        for fault in faults:
            name = f"faults-{uuid.uuid4().hex[:6]}"
            same = {"app_id": name, **{f"topic_{t}": f"{name}-{t}" for t in
                                       ("outbound", "inbound", "config", "outcomes", "dlq")}}
            for i in range(runs):
                with tempfile.TemporaryDirectory(prefix="fault-run-") as scratch:
                    label = "shared" if reuse else str(seed + i)
                    workdir = (Path(scratch) if keep is None and not reuse else
                               (keep or Path(shared)) / f"{fault}-{label}")
                    if reuse:
                        kwargs["worker_settings"] = {**kwargs.get("worker_settings", {}),
                                                     **same}
                    run = await run_fault(fault, own, workdir, seed=seed + i, **kwargs)
                print(run.line(), flush=True)
                for line in run.mismatches[:5] + run.notes + (
                        run.worker_errors if not run.exact or any(run.restarts.values())
                        else []):
                    print(f"    {line}", flush=True)
                results.append(run)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--callbacks", type=int, default=600)
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--settle-timeout", type=float, default=180.0)
    parser.add_argument("--keep", type=Path, help="keep each run's worker logs here")
    parser.add_argument("--reuse", action="store_true",
                        help="the runs of a fault share topics, group and data directory")
    parser.add_argument("--hit-window", default="0.05,0.5",
                        help="the fault hits at a random fraction of the traffic's time in "
                             "this range (0.05: while the worker may still be starting)")
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="seconds the workers run before the traffic starts")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a worker setting, e.g. --set partitions=8 (STREAM_APP_ omitted)")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the producer's own retries
    # Stopped from outside, still stop what it started (the services' finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = asyncio.run(matrix(args.faults.split(","), args.runs, args.seed, args.keep,
                                 args.reuse,
                                 seconds=args.seconds, callbacks=args.callbacks,
                                 outage=args.outage, grace=args.grace,
                                 settle_timeout=args.settle_timeout,
                                 worker_settings=dict(v.split("=", 1) for v in args.set),
                                 hit_window=tuple(map(float, args.hit_window.split(","))),
                                 warmup=args.warmup))
    print(table(results))
    raise SystemExit(0 if all(r.exact for r in results) else 1)


if __name__ == "__main__":
    main()
