"""Same numbers whatever the order: a shuffled backfill, a lagging topic, a stopped worker.

Each test compares, per environment and day, the Redis counters *and* the outcome
records with the brute-force oracle run on the input topics as they are (every valid
record with its Kafka timestamp), and the backfill replays the same topics through a
second consumer group on a fresh Redis database: its outcome records must be
byte-identical.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from stream_app.core.kafka.topics import ensure_topics
from stream_app.core.store.counters import CounterStore
from stream_app.dev.simulate import Scenario, generate, produce
from tests.conftest import Endpoints
from tests.support import (
    WorkerProcess,
    assert_per_agent_counts,
    assert_stats_topic_settles,
    free_port,
    latest_stats,
    outcome_counts,
    poll,
    read_topic,
    stored_counts,
    truth_counts,
    truth_from_topics,
    wait_ready,
    worker_env,
)

pytestmark = pytest.mark.integration


def other_db(url: str, db: int) -> str:
    return f"{url.rsplit('/', 1)[0]}/{db}"


async def settle(worker: WorkerProcess, redis_url: str, truth: dict[str, dict[str, Any]]
                 ) -> dict[str, dict[str, tuple]]:
    """Wait until Redis and the outcome records both equal the oracle; return the counts."""
    s = worker.settings
    redis = Redis.from_url(redis_url, decode_responses=True)
    store = CounterStore(redis, 3600)
    expected = truth_counts(truth)

    async def counters() -> dict[str, dict[str, tuple]]:
        return await stored_counts(store, expected)

    try:
        await poll(counters, lambda c: c == expected, timeout=240, interval=1.0,
                   what=f"Redis counters equal to the oracle\n{worker.log_tail()}")
    finally:
        await redis.aclose()

    async def outcomes() -> dict[str, dict[str, tuple]]:
        counts = outcome_counts(await read_topic(s.kafka_bootstrap, s.topic_outcomes))
        return {e: days for e, days in counts.items() if e in truth}

    await poll(outcomes, lambda c: c == expected, timeout=60, interval=1.0,
               what="outcome records equal to the oracle")
    assert await assert_stats_topic_settles(s, redis_url, expected) >= len(expected)
    return expected


def unmatched(counts: dict[str, dict[str, tuple]]) -> int:
    return sum(c[2] for days in counts.values() for c in days.values())


def worker_for(endpoints: Endpoints, where: Path, **overrides: Any) -> WorkerProcess:
    where.mkdir(parents=True, exist_ok=True)
    return WorkerProcess(worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, where,
                                    **overrides))


async def test_a_shuffled_month_of_history_replays_exactly(endpoints: Endpoints,
                                                           tmp_path: Path) -> None:
    scenario = Scenario(seed=21, environments=2, callbacks=800, contacts=120, days=30,
                        shuffle=True, day=date(2024, 3, 31), bad_rate=0.0,
                        environment_prefix=f"backfill-{uuid.uuid4().hex[:6]}")
    first = worker_for(endpoints, tmp_path / "a")
    s = first.settings
    await ensure_topics(s)
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
              "config": s.topic_config}
    await produce(s.kafka_bootstrap, topics, generate(scenario))
    truth = await truth_from_topics(s)
    first.start()
    try:
        counts = await settle(first, endpoints.redis_url, truth)
        assert await assert_per_agent_counts(s, endpoints.redis_url) >= 2
    finally:
        first.stop()
    print(f"\nbackfill: {sum(c[0] for d in counts.values() for c in d.values())} callbacks "
          f"over 30 days, shuffled: unmatched {unmatched(counts)} (oracle "
          f"{unmatched(truth_counts(truth))})")

    replay_env = dict(first.env)
    suffix = uuid.uuid4().hex[:8]
    replay_env.update({"STREAM_APP_APP_ID": f"replay-{suffix}",
                       "STREAM_APP_TOPIC_OUTCOMES": f"outcomes-replay-{suffix}",
                       "STREAM_APP_TOPIC_DLQ": f"dlq-replay-{suffix}",
                       "STREAM_APP_TOPIC_STATS": f"stats-replay-{suffix}",
                       "STREAM_APP_REDIS_URL": other_db(endpoints.redis_url, 1),
                       "STREAM_APP_WORKER_WEB_PORT": str(free_port()),
                       "STREAM_APP_DATA_DIR": str(tmp_path / "b")})
    (tmp_path / "b").mkdir()
    replay = WorkerProcess(replay_env)
    replay.start()
    try:
        await settle(replay, replay_env["STREAM_APP_REDIS_URL"], truth)
        await assert_per_agent_counts(s, replay_env["STREAM_APP_REDIS_URL"])
    finally:
        replay.stop()
    original = {r.value for r in await read_topic(s.kafka_bootstrap, s.topic_outcomes)}
    replayed = {r.value for r in await read_topic(s.kafka_bootstrap,
                                                  replay.settings.topic_outcomes)}
    assert original == replayed, "a replay published different outcome records"
    assert latest_stats(await read_topic(s.kafka_bootstrap, s.topic_stats)) == \
        latest_stats(await read_topic(s.kafka_bootstrap, replay.settings.topic_stats)), \
        "a replay left other latest stats values"


async def test_a_lagging_outbound_topic_changes_no_decision(endpoints: Endpoints,
                                                            tmp_path: Path) -> None:
    """A backlog of outbound calls of another environment sits ahead of live traffic."""
    worker = worker_for(endpoints, tmp_path)
    s = worker.settings
    await ensure_topics(s)
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
              "config": s.topic_config}
    backlog = Scenario(seed=5, environments=1, callbacks=0, contacts=5000,
                       environment_prefix=f"backlog-{uuid.uuid4().hex[:6]}")
    noise = generate(backlog)
    noise.messages = [("outbound", m) for _, m in
                      generate(Scenario(seed=6, environments=1, callbacks=40_000, contacts=9000,
                                        match_rate=0.0, bad_rate=0.0, answer_rate=0.0,
                                        environment_prefix=backlog.environment_prefix)
                               ).messages if _ == "outbound"][:40_000]
    await produce(s.kafka_bootstrap, topics, noise)
    live = Scenario(seed=22, environments=2, callbacks=600, contacts=150, bad_rate=0.0,
                    environment_prefix=f"lag-{uuid.uuid4().hex[:6]}")
    worker.start()
    try:
        await produce(s.kafka_bootstrap, topics, generate(live), rate=600)
        truth = {e: d for e, d in (await truth_from_topics(s)).items()
                 if e.startswith(live.environment_prefix)}
        counts = await settle(worker, endpoints.redis_url, truth)
    finally:
        worker.stop()
    print(f"\nlag: {len(noise.messages)} outbound calls queued ahead; live unmatched "
          f"{unmatched(counts)} (oracle {unmatched(truth_counts(truth))})")


async def test_a_worker_stopped_longer_than_grace_changes_no_decision(endpoints: Endpoints,
                                                                     tmp_path: Path) -> None:
    worker = worker_for(endpoints, tmp_path)
    s = worker.settings
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
              "config": s.topic_config}
    scenario = Scenario(seed=23, environments=2, callbacks=2400, contacts=200,
                        environment_prefix=f"outage-{uuid.uuid4().hex[:6]}")
    rate = 400
    sent = [0]

    def progress(n: int) -> None:
        sent[0] += n

    async def produced() -> int:
        return sent[0]

    traffic = generate(scenario)  # a day in event-time order: outbound calls come first
    callbacks_from = [kind for kind, _ in traffic.messages].index("inbound")
    worker.start()
    wait_ready(worker)
    sending = asyncio.create_task(produce(s.kafka_bootstrap, topics, traffic, rate=rate,
                                          progress=progress))
    try:
        # Stop it once callbacks flow (some pending, some decided), not before ...
        await poll(produced, lambda n: n >= callbacks_from + rate, timeout=120,
                   what="callbacks flowing")
        worker.stop()
        # ... for more than 3 x G of traffic (in record time: what the producer sent).
        stopped_at = sent[0]
        await poll(produced,
                   lambda n: n >= stopped_at + rate * s.match_grace_seconds * 3
                   or sending.done(), timeout=120, what="3 x G of traffic while stopped")
        assert not sending.done(), "the traffic ended before 3 x G passed: make it longer"
        worker.start()
        await sending
        truth = await truth_from_topics(s)
        await settle(worker, endpoints.redis_url, truth)
    finally:
        worker.stop()
