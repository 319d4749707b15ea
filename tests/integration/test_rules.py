"""Every rule of contract §2, end to end: real broker, real worker process, real Redis.

Each test owns an environment id, so tests share one worker without leaking.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from stream_app.core.store.counters import CounterStore, Stats
from stream_app.core.store.layout import config_key
from tests.conftest import Endpoints
from tests.support import WorkerProcess, config, inbound, outbound, poll, produce

pytestmark = pytest.mark.integration

PHONE = "+5511999990000"
T0 = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
DAY = "2024-05-10"
W = timedelta(days=7)


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def settled(redis: Redis, env: str, received: int, days: tuple[str, ...] = (DAY,),
                  worker: WorkerProcess | None = None) -> Stats:
    """Poll until ``received`` calls are counted and every one of them is classified."""
    store = CounterStore(redis, 3600)

    def done(s: Stats) -> bool:
        return s.received == received and s.unmatched + sum(s.by_source.values()) == received

    tail = worker.log_tail() if worker else ""
    return await poll(lambda: store.read_stats(env, list(days)), done,
                      what=f"{received} settled callbacks in {env}\n{tail}")


async def configured(redis: Redis, env: str, agent: str, sources: list[str] | None) -> None:
    """Wait until the worker stored this role version (decisions need no such wait: the
    config topic's progress is part of the watermark; the tests use it to fail early)."""
    def applied(members: list[str]) -> bool:
        return any(orjson.loads(m)["s"] == sources for m in members)

    await poll(lambda: redis.zrange(config_key(env, agent), 0, -1), applied,
               what="config stored")


async def records(endpoints: Endpoints, topic: str, env: str, count: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=endpoints.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[dict[str, Any]] = []

    async def fetch() -> list[dict[str, Any]]:
        batch = await consumer.getmany(timeout_ms=500)
        for messages in batch.values():
            for m in messages:
                value = orjson.loads(m.value)
                if value.get("environment_id") == env or env.encode() in (m.value or b""):
                    found.append(value)
        return found

    try:
        return await poll(fetch, lambda f: len(f) >= count, what=f"{count} records")
    finally:
        await consumer.stop()


async def test_window_edges(worker, producer, redis, env_id) -> None:
    s = worker.settings
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "sales", at(T0 - W), call="edge"),
                  outbound(env_id, "+5511999990001", "sales", at(T0 - W - timedelta(seconds=1))))
    await produce(producer, s.topic_inbound, inbound(env_id, PHONE, "in-1", at(T0)),
                  inbound(env_id, "+5511999990001", "in-2", at(T0)))
    stats = await settled(redis, env_id, 2, worker=worker)
    assert stats.by_source == {"sales": 1}
    assert stats.unmatched == 1


async def test_latest_source_wins_and_later_non_source_is_ignored(worker, producer, redis,
                                                                 env_id) -> None:
    s = worker.settings
    await produce(producer, s.topic_config, config(env_id, "callback-1", ["a", "b"], at(T0)))
    await configured(redis, env_id, "callback-1", ["a", "b"])
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "a", at(T0 - timedelta(hours=3))),
                  outbound(env_id, PHONE, "b", at(T0 - timedelta(hours=2))),
                  outbound(env_id, PHONE, "x", at(T0 - timedelta(hours=1))))
    await produce(producer, s.topic_inbound, inbound(env_id, PHONE, "in-1", at(T0)))
    stats = await settled(redis, env_id, 1, worker=worker)
    assert stats.by_source == {"b": 1}


async def test_outbound_after_the_callback_does_not_explain_it(worker, producer, redis,
                                                              env_id) -> None:
    s = worker.settings
    await produce(producer, s.topic_inbound, inbound(env_id, PHONE, "in-1", at(T0)))
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "sales", at(T0 + timedelta(seconds=1))))
    stats = await settled(redis, env_id, 1, worker=worker)
    assert stats.unmatched == 1 and stats.by_source == {}


async def test_environments_never_mix(worker, producer, redis, env_id) -> None:
    s, other = worker.settings, f"{env_id}-other"
    await produce(producer, s.topic_outbound,
                  outbound(other, PHONE, "sales", at(T0 - timedelta(hours=1)), name="Other"))
    await produce(producer, s.topic_inbound, inbound(env_id, PHONE, "in-1", at(T0)))
    stats = await settled(redis, env_id, 1, worker=worker)
    assert stats.unmatched == 1
    assert stats.names == {}
    other_stats = await CounterStore(redis, 3600).read_stats(other, [DAY])
    assert other_stats.received == 0


async def test_unconfigured_and_removed_roles_accept_every_agent(worker, producer, redis,
                                                                env_id) -> None:
    s = worker.settings
    await produce(producer, s.topic_config,
                  config(env_id, "removed", ["a"], at(T0 - timedelta(days=1))),
                  config(env_id, "removed", [], at(T0)))
    await configured(redis, env_id, "removed", [])
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "zed", at(T0 - timedelta(hours=1))))
    await produce(producer, s.topic_inbound,
                  inbound(env_id, PHONE, "in-1", at(T0), agent="never-configured"),
                  inbound(env_id, PHONE, "in-2", at(T0), agent="removed"))
    stats = await settled(redis, env_id, 2, worker=worker)
    assert stats.by_source == {"zed": 2}


async def test_newest_config_wins_whatever_the_arrival_order(worker, producer, redis,
                                                             env_id) -> None:
    s = worker.settings
    await produce(producer, s.topic_config,
                  config(env_id, "callback-1", ["b"], at(T0)),
                  config(env_id, "callback-1", ["a"], at(T0 - timedelta(days=1))))
    await configured(redis, env_id, "callback-1", ["b"])
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "b", at(T0 - timedelta(hours=2))),
                  outbound(env_id, PHONE, "a", at(T0 - timedelta(hours=1))))
    await produce(producer, s.topic_inbound, inbound(env_id, PHONE, "in-1", at(T0)))
    stats = await settled(redis, env_id, 1, worker=worker)
    assert stats.by_source == {"b": 1}


async def test_outbound_arriving_late_within_grace_still_matches(worker, producer, redis,
                                                                env_id) -> None:
    """The callback arrives first; an older outbound call, then a more recent one, arrive
    after it but within G: the more recent one is the source."""
    s = worker.settings
    await produce(producer, s.topic_inbound, inbound(env_id, PHONE, "in-1", at(T0)))
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "older", at(T0 - timedelta(hours=2))))
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "newer", at(T0 - timedelta(hours=1))))
    stats = await settled(redis, env_id, 1, worker=worker)
    assert stats.by_source == {"newer": 1}


async def test_duplicates_count_once(worker, producer, redis, env_id) -> None:
    s = worker.settings
    received = inbound(env_id, PHONE, "in-1", at(T0))
    again = inbound(env_id, PHONE, "in-1", at(T0 + timedelta(seconds=2)), event_id="other-id")
    answered = inbound(env_id, PHONE, "in-1", at(T0 + timedelta(seconds=5)), kind="answered")
    await produce(producer, s.topic_inbound, received, received, again, answered, answered)
    stats = await settled(redis, env_id, 1, worker=worker)
    assert (stats.received, stats.answered, stats.unmatched) == (1, 1, 1)
    await produce(producer, s.topic_inbound, received, answered)
    outcomes = await records(worker_endpoints(worker), s.topic_outcomes, env_id, 2)
    stats = await settled(redis, env_id, 1, worker=worker)
    assert (stats.received, stats.answered) == (1, 1)
    assert {r["kind"] for r in outcomes} == {"classified", "answered"}


async def test_answered_without_received_and_day_follows_received(worker, producer, redis,
                                                                  env_id) -> None:
    """An answered event just after midnight arrives first; the received event from
    just before midnight arrives later and pulls every counter to its day."""
    s = worker.settings
    midnight = datetime(2024, 5, 11, tzinfo=UTC)
    await produce(producer, s.topic_inbound,
                  inbound(env_id, PHONE, "late", at(midnight + timedelta(seconds=5)),
                          kind="answered"))
    days = (DAY, "2024-05-11")
    stats = await settled(redis, env_id, 1, days=("2024-05-11",), worker=worker)
    assert (stats.received, stats.answered, stats.unmatched) == (1, 1, 1)
    await produce(producer, s.topic_inbound,
                  inbound(env_id, PHONE, "late", at(midnight - timedelta(seconds=1))))
    store = CounterStore(redis, 3600)
    moved = await poll(lambda: store.read_stats(env_id, [DAY]), lambda st: st.received == 1,
                       what="counters moved to the received day")
    assert (moved.received, moved.answered, moved.unmatched) == (1, 1, 1)
    total = await store.read_stats(env_id, list(days))
    assert (total.received, total.answered, total.unmatched) == (1, 1, 1)


async def test_bad_input_goes_to_the_dlq_and_counting_continues(worker, producer, redis,
                                                               env_id) -> None:
    s = worker.settings
    bad = inbound(env_id, "not-a-phone", "bad", at(T0))
    await produce(producer, s.topic_inbound, b"{not json", orjson.dumps(bad),
                  orjson.dumps({**inbound(env_id, PHONE, "x", at(T0)), "type": "hangup"}),
                  inbound(env_id, PHONE, "good", at(T0)))
    stats = await settled(redis, env_id, 1, worker=worker)
    assert stats.received == 1
    dead = await records(worker_endpoints(worker), s.topic_dlq, env_id, 2)
    reasons = {d["code"] for d in dead}
    assert {"bad_phone", "unknown_type"} <= reasons
    for d in dead:
        assert d["source_topic"] == s.topic_inbound
        assert isinstance(d["partition"], int) and isinstance(d["offset"], int)
        assert d["reason"] and d["value_base64"]
    assert worker.alive()
    port = worker.settings.worker_web_port
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/metrics") as response:
        metrics = await response.text()
    assert 'callback_stats_dead_letters_total{reason="bad_phone"' in metrics
    assert "callback_stats_pending_callbacks" in metrics
    assert f'callback_stats_consumer_lag{{topic="{s.topic_inbound}"}}' in metrics


async def test_outcome_records(worker, producer, redis, endpoints, env_id) -> None:
    s = worker.settings
    await produce(producer, s.topic_outbound,
                  outbound(env_id, PHONE, "sales", at(T0 - timedelta(hours=1)), call="out-1"))
    await produce(producer, s.topic_inbound, inbound(env_id, PHONE, "in-1", at(T0)),
                  inbound(env_id, PHONE, "in-1", at(T0), kind="answered"),
                  inbound(env_id, "+5511999990009", "in-2", at(T0)))
    await settled(redis, env_id, 2, worker=worker)
    found = await records(endpoints, s.topic_outcomes, env_id, 3)
    by_kind = {(r["kind"], r["call_id"]): r for r in found}
    matched = by_kind[("classified", "in-1")]
    assert matched["outcome"] == "matched"
    assert (matched["source_agent_id"], matched["source_call_id"]) == ("sales", "out-1")
    assert matched["day"] == DAY and matched["callback_agent_id"] == "callback-1"
    unmatched = by_kind[("classified", "in-2")]
    assert unmatched["outcome"] == "unmatched" and "source_agent_id" not in unmatched
    assert by_kind[("answered", "in-1")]["day"] == DAY
    assert len({r["id"] for r in found}) == 3


def worker_endpoints(worker: WorkerProcess) -> Endpoints:
    return Endpoints(worker.settings.kafka_bootstrap, worker.settings.redis_url, "worker",
                     worker.settings.redis_cluster)

