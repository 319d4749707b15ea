"""The soak: workers of one group joining, leaving and SIGKILLed under steady traffic.

Checks what must hold whatever the membership does: the audit finds no committed input
offset that was neither forwarded nor dead-lettered, and every counter per environment
and day (received, answered, unmatched, by source) and every outcome record equal the
oracle run on the input topics. A short run
is in the test suite (``tests/integration/test_soak.py``); ``make soak`` runs a long one
and prints figures:

    python -m benchmarks.soak --seconds 600 --callbacks 40000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from stream_app.core.ops.audit import AuditReport, audit
from stream_app.core.store.counters import CounterStore
from stream_app.dev.simulate import Scenario, generate, produce
from stream_app.settings import Settings
from tests.support import (
    WorkerProcess,
    free_port,
    outcome_counts,
    poll,
    read_topic,
    stored_counts,
    truth_counts,
    truth_from_topics,
    worker_env,
)


@dataclass
class SoakResult:
    messages: int
    callbacks: int
    prefix: str
    seconds: float = 0.0
    actions: dict[str, int] = field(default_factory=lambda: {"start": 0, "sigterm": 0,
                                                             "sigkill": 0})
    settle_seconds: float = 0.0
    calls_exact: bool = False
    """received / answered per environment and day equal the oracle."""
    counts_exact: bool = False
    """... and so do unmatched and by-source."""
    split_off: int = 0
    """Sum over days of |unmatched - oracle's unmatched|."""
    outcomes_exact: bool = False
    mismatches: list[str] = field(default_factory=list)
    report: AuditReport | None = None

    @property
    def membership_changes(self) -> int:
        return sum(self.actions.values())

    def summary(self) -> str:
        missing = "?" if self.report is None else self.report.missing
        return (f"soak: {self.messages} messages ({self.callbacks} callbacks) in "
                f"{self.seconds:.0f}s; {self.actions['start']} starts, "
                f"{self.actions['sigterm']} SIGTERMs, {self.actions['sigkill']} SIGKILLs "
                f"({self.membership_changes} membership changes, each a rebalance); "
                f"settled {self.settle_seconds:.1f}s after the last message; "
                f"audit: {missing} missing offsets; received/answered equal to the oracle: "
                f"{self.calls_exact}; matched/unmatched too: {self.counts_exact} "
                f"(unmatched off by {self.split_off}); outcome records equal: "
                f"{self.outcomes_exact}")


async def run_soak(kafka: str, redis_url: str, workdir: Path, *, seconds: float,
                   callbacks: int, workers: int = 3, seed: int = 1,
                   pause: tuple[float, float] = (3.0, 10.0),
                   log: Callable[[str], None] = print) -> SoakResult:
    rnd = random.Random(seed)
    scenario = Scenario(seed=seed, environments=3, callbacks=callbacks,
                        contacts=max(50, callbacks // 5),
                        environment_prefix=f"soak-{uuid.uuid4().hex[:6]}")
    traffic = generate(scenario)
    result = SoakResult(len(traffic.messages), callbacks, scenario.environment_prefix)
    base = worker_env(kafka, redis_url, workdir / "w0", match_grace_seconds=30)
    pool = []
    for i in range(workers):
        (workdir / f"w{i}").mkdir(parents=True, exist_ok=True)
        pool.append(WorkerProcess({**base, "STREAM_APP_DATA_DIR": str(workdir / f"w{i}"),
                                   "STREAM_APP_WORKER_WEB_PORT": str(free_port())}))
    s = pool[0].settings
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
              "config": s.topic_config}
    began = time.monotonic()
    for worker in pool:
        worker.start()
    sending = asyncio.create_task(produce(kafka, topics, traffic,
                                          rate=len(traffic.messages) / seconds))
    prelude = ["sigkill", "start", "sigterm", "start"]
    try:
        while not sending.done():
            await asyncio.wait([sending], timeout=rnd.uniform(*pause))
            if sending.done():
                break
            action = prelude.pop(0) if prelude else _pick(rnd, pool)
            _act(rnd, pool, action, result)
            log(f"  {time.monotonic() - began:6.1f}s {action}: "
                f"{sum(w.alive() for w in pool)} workers alive")
        await sending
        result.seconds = time.monotonic() - began
        for worker in pool:
            if not worker.alive():
                worker.start()
        await _settle(result, s, redis_url)
        result.settle_seconds = time.monotonic() - began - result.seconds
        await _all_committed(s, pool)
        result.report = await audit(s)
    finally:
        for worker in pool:
            worker.stop()
    return result


def _pick(rnd: random.Random, pool: list[WorkerProcess]) -> str:
    alive = sum(w.alive() for w in pool)
    if alive == 0:
        return "start"
    if alive == len(pool):
        return rnd.choice(["sigterm", "sigkill"])
    return rnd.choice(["start", "start", "sigterm", "sigkill"])


def _act(rnd: random.Random, pool: list[WorkerProcess], action: str,
         result: SoakResult) -> None:
    if action == "start":
        candidates = [w for w in pool if not w.alive()]
    else:
        candidates = [w for w in pool if w.alive()]
    if not candidates:
        return
    worker = rnd.choice(candidates)
    {"start": worker.start, "sigterm": worker.stop, "sigkill": worker.kill}[action]()
    result.actions[action] += 1


async def _settle(result: SoakResult, settings: Settings, redis_url: str) -> None:
    """Wait until ``received`` / ``answered`` equal the oracle on the topics, then until
    the matched / unmatched split does too (decisions wait for the watermarks, so they
    come last), and compare the outcome records."""
    truth = {e: d for e, d in (await truth_from_topics(settings)).items()
             if e.startswith(result.prefix)}
    wanted = truth_counts(truth)
    redis = Redis.from_url(redis_url, decode_responses=True)
    store = CounterStore(redis, 3600)

    async def counts() -> dict[str, dict[str, tuple]]:
        return await stored_counts(store, wanted)

    def calls(c: dict[str, dict[str, tuple]]) -> dict[str, dict[str, tuple]]:
        return {e: {d: v[:2] for d, v in days.items()} for e, days in c.items()}

    try:
        await poll(counts, lambda c: calls(c) == calls(wanted), timeout=240, interval=1.0,
                   what="received/answered equal to the oracle")
        result.calls_exact = True
        await poll(counts, lambda c: c == wanted, timeout=90, interval=1.0,
                   what="every counter equal to the oracle")
        result.counts_exact = True
    except AssertionError:
        pass
    finally:
        got = await counts()
        result.mismatches = [f"{e} {d}: got {got[e][d]}, oracle {v}"
                             for e, days in wanted.items() for d, v in days.items()
                             if got[e][d] != v]
        result.split_off = sum(abs(got[e][d][2] - v[2]) for e, days in wanted.items()
                               for d, v in days.items())
        await redis.aclose()
    published = outcome_counts(await read_topic(settings.kafka_bootstrap,
                                                settings.topic_outcomes))
    result.outcomes_exact = {e: d for e, d in published.items() if e in wanted} == wanted


async def _all_committed(settings: object, pool: list[WorkerProcess]) -> None:
    """Wait until the group has committed every input partition to its end."""
    s = pool[0].settings
    inputs = (s.topic_outbound, s.topic_inbound, s.topic_config)
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await consumer.start()
    await admin.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(t, p) for t in inputs
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(tps)

        async def behind() -> dict[str, int]:
            done = await admin.list_consumer_group_offsets(s.app_id)
            return {f"{tp.topic}[{tp.partition}]": end - (done[tp].offset if tp in done else 0)
                    for tp, end in ends.items()
                    if end - (done[tp].offset if tp in done else 0) > 0}

        await poll(behind, lambda lag: not lag, timeout=120, interval=0.5,
                   what="the group to commit every input partition to its end")
    finally:
        await consumer.stop()
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--callbacks", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workdir", type=Path, default=Path(".services/soak"))
    args = parser.parse_args()
    result = asyncio.run(run_soak(args.kafka, args.redis, args.workdir / uuid.uuid4().hex[:8],
                                  seconds=args.seconds, callbacks=args.callbacks,
                                  workers=args.workers, seed=args.seed))
    print(result.summary())
    if result.report is not None:
        for topic in result.report.topics:
            print(f"  {topic.as_dict()}")
    for line in result.mismatches[:20]:
        print(f"  mismatch {line}")
    ok = (result.counts_exact and result.outcomes_exact and result.report is not None
          and not result.report.missing)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
