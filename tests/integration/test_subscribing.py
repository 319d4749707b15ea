"""What a subscriber of the derived topics gets: the example subscriber's numbers equal
the oracle (duplicates dropped), ``stream-app tail`` prints the records, and an input's
trace context reaches the records it caused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from stream_app.core.store.counters import CounterStore
from stream_app.dev.simulate import Scenario, generate, produce
from tests.conftest import Endpoints
from tests.support import (
    REPO,
    WorkerProcess,
    inbound,
    outbound,
    poll,
    read_topic,
    stored_counts,
    truth_counts,
    truth_from_topics,
)

pytestmark = pytest.mark.integration

TRACE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_the_example_subscriber_equals_the_oracle_whatever_is_republished(
        endpoints: Endpoints, worker: WorkerProcess, redis: Redis) -> None:
    s = worker.settings
    scenario = Scenario(seed=31, environments=2, callbacks=300, contacts=80,
                        environment_prefix=f"sub-{uuid.uuid4().hex[:6]}")
    await produce(s.kafka_bootstrap, {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
                                      "config": s.topic_config}, generate(scenario))
    truth = {e: d for e, d in (await truth_from_topics(s)).items()
             if e.startswith(scenario.environment_prefix)}
    wanted = truth_counts(truth)
    store = CounterStore(redis, 3600)
    await poll(lambda: stored_counts(store, wanted), lambda got: got == wanted, timeout=120,
               what=f"counters equal to the oracle\n{worker.log_tail()}")
    await poll(lambda: read_topic(s.kafka_bootstrap, s.topic_outcomes),
               lambda records: len(records) >= sum(c[0] + c[1] for d in wanted.values()
                                                   for c in d.values()),
               what="every outcome published")
    republished = await _republish_some(s.kafka_bootstrap, s.topic_outcomes)

    report = _subscriber(s.kafka_bootstrap, s.topic_outcomes)
    assert report["duplicates_dropped"] >= republished > 0
    got = {env: {day: (counts["unmatched"], counts["answered"],
                       counts["matched_by_source_agent"])
                 for day, counts in days.items()}
           for env, days in report["days"].items() if env in truth}
    assert got == {env: {day: (c[2], c[1], dict(sorted(c[3].items())))
                         for day, c in days.items()} for env, days in wanted.items()}

    env = sorted(truth)[0]
    lines = _tail("callback-stats", s.topic_stats, s.kafka_bootstrap, "--environment", env)
    latest = {v["day"]: v for v in map(orjson.loads, lines) if "callback_agent_id" not in v}
    assert {day: (v["total_callbacks_received"], v["callbacks_unmatched"])
            for day, v in latest.items()} == {day: (c[0], c[2])
                                              for day, c in wanted[env].items()}
    outcomes = _tail("callback-outcomes", s.topic_outcomes, s.kafka_bootstrap,
                     "--environment", env)
    assert {orjson.loads(line)["environment_id"] for line in outcomes} == {env}


async def test_an_inputs_trace_context_reaches_the_records_it_caused(
        endpoints: Endpoints, worker: WorkerProcess, env_id: str) -> None:
    s = worker.settings
    phone, day = "+5511988887777", "2024-06-03"
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap)
    await producer.start()
    try:
        await (await producer.send(s.topic_outbound, orjson.dumps(
            outbound(env_id, phone, "sales", f"{day}T10:00:00Z"))))
        headers = [("traceparent", TRACE)]
        for kind, minute in (("received", "05"), ("answered", "06")):
            await (await producer.send(s.topic_inbound, orjson.dumps(
                inbound(env_id, phone, "cb-call", f"{day}T10:{minute}:00Z", kind)),
                headers=headers))
        await (await producer.send(s.topic_inbound, b"{not json", headers=headers))
    finally:
        await producer.stop()

    async def caused() -> dict[str, list[dict[str, bytes]]]:
        found: dict[str, list[dict[str, bytes]]] = {}
        for topic in (s.topic_outcomes, s.topic_stats, s.topic_dlq):
            for r in await read_topic(s.kafka_bootstrap, topic):
                if env_id.encode() in (r.key or b"") or (
                        topic == s.topic_dlq and b"{not json" in (r.value or b"")):
                    found.setdefault(topic, []).append(dict(r.headers or ()))
        return found

    found = await poll(caused, lambda f: len(f.get(s.topic_outcomes, [])) == 2
                       and s.topic_stats in f and s.topic_dlq in f, timeout=60,
                       what=f"the outcomes, stats and dead letter\n{worker.log_tail()}")
    for topic, records in found.items():
        assert all(h.get("traceparent") == TRACE for h in records), topic
    keyed = [dict(r.headers or ()) for r in
             await read_topic(s.kafka_bootstrap, f"{s.app_id}-by-contact")
             if env_id.encode() in (r.key or b"") and b'"i"' in (r.value or b"")[:5]]
    assert keyed and all(h.get("traceparent") == TRACE for h in keyed)


async def _republish_some(bootstrap: str, topic: str) -> int:
    """Send a third of the outcome records again, headers and all, as a worker that
    crashed between publishing and committing would."""
    records = (await read_topic(bootstrap, topic))[::3]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, r.value, key=r.key,
                                                   headers=list(r.headers or ()))
                               for r in records])
    finally:
        await producer.stop()
    return len(records)


def _subscriber(bootstrap: str, topic: str) -> dict:
    done = subprocess.run([sys.executable, str(REPO / "examples" / "subscriber.py"),
                           "--bootstrap", bootstrap, "--topic", topic, "--until-end"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


def _tail(which: str, topic: str, bootstrap: str, *extra: str) -> list[str]:
    env = {"STREAM_APP_KAFKA_BOOTSTRAP": bootstrap,
           f"STREAM_APP_TOPIC_{which.split('-')[-1].upper()}": topic}
    done = subprocess.run([str(Path(sys.executable).parent / "stream-app"), "tail", which,
                           "--from-beginning", "--until-end", *extra],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**__import__("os").environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
