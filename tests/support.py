"""Helpers shared by the tests: a real worker process, event builders, polling."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaProducer

from stream_app.settings import Settings

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
PUBLISHED: set[tuple[str, str]] = set()
"""(bootstrap, topic) of every published topic of every worker this test session
started: each of their records is checked against its schema at the end of the session
(``conftest.py``)."""


class ManualClock:
    """A clock a test turns by hand (``clock.now += 5``): timing rules without sleeping."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_env(kafka: str, redis_url: str, data_dir: Path, **overrides: Any) -> dict[str, str]:
    """Settings for a worker on topics and a consumer group nobody else uses."""
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "KAFKA_BOOTSTRAP": kafka,
        "REDIS_URL": redis_url,
        "APP_ID": f"cbs-test-{suffix}",
        "MATCH_GRACE_SECONDS": 3,
        "TIMESTAMP_DISORDER_SECONDS": 1,
        "PARTITIONS": 4,
        "WORKER_WEB_PORT": free_port(),
        "DATA_DIR": str(data_dir),
        "TOPIC_OUTBOUND": f"outbound-{suffix}",
        "TOPIC_INBOUND": f"inbound-{suffix}",
        "TOPIC_CONFIG": f"config-{suffix}",
        "TOPIC_OUTCOMES": f"outcomes-{suffix}",
        "TOPIC_DLQ": f"dlq-{suffix}",
        "TOPIC_STATS": f"stats-{suffix}",
    }
    values.update({k.upper(): v for k, v in overrides.items()})
    return {f"STREAM_APP_{k}": str(v) for k, v in values.items()}


class WorkerProcess:
    """``stream-app worker`` as a child process, killable at any instant."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.settings = Settings(**{k.removeprefix("STREAM_APP_").lower(): v
                                    for k, v in env.items()})
        self.log = Path(env["STREAM_APP_DATA_DIR"]) / "worker.log"
        s = self.settings
        PUBLISHED.update((s.kafka_bootstrap, topic)
                         for topic in (s.topic_outcomes, s.topic_stats, s.topic_dlq))
        self.process: subprocess.Popen[bytes] | None = None
        self.wanted = False
        """Started and not stopped on purpose since (a supervisor restarts it if it dies)."""

    def start(self) -> None:
        self.wanted = True
        child_env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream_app", "worker", "--loglevel",
                 os.environ.get("TEST_WORKER_LOGLEVEL", "WARNING")],
                env=child_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit."""
        assert self.process is not None
        self.wanted = False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self.wanted = False
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_ready(worker: WorkerProcess, timeout: float = 120) -> None:
    """Until the worker's ``/readyz`` answers 200 (it dies: fail with its log)."""
    import requests

    url = f"http://127.0.0.1:{worker.env['STREAM_APP_WORKER_WEB_PORT']}/readyz"
    deadline = time.monotonic() + timeout
    while True:
        assert worker.alive(), worker.log_tail()
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.5)


async def poll(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool],
               timeout: float = 90.0, interval: float = 0.2, what: str = "condition") -> T:
    """Poll ``probe`` until ``until(value)``; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def produce(producer: AIOKafkaProducer, topic: str, *values: Any,
                  key: bytes | None = None) -> None:
    """Send each value (dict -> JSON, bytes as is) and wait until all are acknowledged."""
    futures = [await producer.send(topic, v if isinstance(v, bytes | None) else orjson.dumps(v),
                                   key=key) for v in values]
    await asyncio.gather(*futures)


def outbound(env: str, phone: str, agent: str, at: str, call: str | None = None,
             name: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    call = call or f"out-{uuid.uuid4().hex[:8]}"
    event: dict[str, Any] = {"event_id": event_id or f"ev-{call}", "environment_id": env,
                             "call_id": call, "agent_id": agent, "contact_phone": phone,
                             "occurred_at": at}
    if name is not None:
        event["agent_name"] = name
    return event


def inbound(env: str, phone: str, call: str, at: str, kind: str = "received",
            agent: str = "callback-1", event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or f"ev-{call}-{kind}", "environment_id": env,
            "call_id": call, "type": kind, "callback_agent_id": agent, "contact_phone": phone,
            "occurred_at": at}


def config(env: str, agent: str, sources: list[str] | None, updated_at: str,
           name: str | None = None) -> dict[str, Any]:
    return {"environment_id": env, "agent_id": agent, "source_agent_ids": sources,
            "updated_at": updated_at, "name": name}


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of ``topic`` now (ConsumerRecords, timestamps in ms)."""
    return await read_topics(bootstrap, {topic})


async def truth_from_topics(settings: Settings, callback_agent_id: str | None = None
                            ) -> dict[str, dict[str, Any]]:
    """The oracle on the input topics as they are: every valid record with its timestamp
    (only the calls routed to ``callback_agent_id`` if given)."""
    from stream_app.dev.simulate import bodies
    from stream_app.dev.truth import expected

    days, names = expected(*await _stamped_topics(settings), settings.recency_window_seconds,
                           settings.zone, settings.match_grace_seconds, callback_agent_id)
    return bodies(days, names)


async def calls_from_topics(settings: Settings) -> list[Any]:
    """The oracle's decision of every callback on the input topics (``CallTruth``)."""
    from stream_app.dev.truth import per_call

    return per_call(*await _stamped_topics(settings), settings.recency_window_seconds,
                    settings.zone, settings.match_grace_seconds)


async def _stamped_topics(settings: Settings) -> tuple[list[Any], list[Any], list[Any]]:
    from stream_app.core.domain.events import (
        CallbackAgentConfig,
        InboundCallback,
        OutboundCall,
        parse,
    )

    def stamped(records: list[Any], model: Any) -> list[Any]:
        out = []
        for r in records:
            event = parse(model, r.value)
            if isinstance(event, model):
                out.append((event, r.timestamp / 1000))
        return out

    b = settings.kafka_bootstrap
    return (stamped(await read_topic(b, settings.topic_outbound), OutboundCall),
            stamped(await read_topic(b, settings.topic_inbound), InboundCallback),
            stamped(await read_topic(b, settings.topic_config), CallbackAgentConfig))


def outcome_counts(records: list[Any]) -> dict[str, dict[str, tuple]]:
    """Per environment and day, (classified, answered, unmatched, by source) from the
    outcome records, dropping republished duplicates by id (as a subscriber would)."""
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        value = orjson.loads(r.value)
        assert latest.setdefault(value["id"], value) == value, "an outcome record changed"
    counts: dict[str, dict[str, list]] = {}
    for v in latest.values():
        c = counts.setdefault(v["environment_id"], {}).setdefault(v["day"], [0, 0, 0, {}])
        if v["kind"] == "answered":
            c[1] += 1
            continue
        c[0] += 1
        if v["outcome"] == "unmatched":
            c[2] += 1
        else:
            c[3][v["source_agent_id"]] = c[3].get(v["source_agent_id"], 0) + 1
    return {e: {d: tuple(c) for d, c in days.items()} for e, days in counts.items()}


def truth_counts(truth: dict[str, dict[str, Any]]) -> dict[str, dict[str, tuple]]:
    """The oracle's bodies in the shape of :func:`outcome_counts`."""
    return {env: {day: (b["total_callbacks_received"], b["callbacks_answered"],
                        b["callbacks_unmatched"],
                        {r["source_agent_id"]: r["count"] for r in b["callbacks_by_source_agent"]})
                  for day, b in days.items()} for env, days in truth.items()}


async def stored_counts(store: Any, wanted: dict[str, dict[str, tuple]],
                        callback_agent_id: str | None = None) -> dict[str, dict[str, tuple]]:
    """The Redis counters for every (environment, day) of ``wanted``, in the shape of
    :func:`truth_counts` (those of one callback agent if given)."""
    got: dict[str, dict[str, tuple]] = {}
    for env, days in wanted.items():
        for day in days:
            when = date.fromisoformat(day)
            st = await store.read_range(env, when, when, callback_agent_id)
            got.setdefault(env, {})[day] = (st.received, st.answered, st.unmatched,
                                            {a: c for a, c in st.by_source.items() if c})
    return got


async def assert_per_agent_counts(settings: Settings, redis_url: str) -> int:
    """Every callback agent's counters equal the oracle's on the input topics (each call
    counted for its earliest record's agent). Returns the number of agents checked."""
    from stream_app.core.store.counters import CounterStore

    agents = {c.callback_agent_id for c in await calls_from_topics(settings)}
    store = CounterStore.from_url(redis_url, 3600, cluster=settings.redis_cluster)
    try:
        for agent in sorted(agents):
            wanted = truth_counts(await truth_from_topics(settings, agent))
            assert await stored_counts(store, wanted, agent) == wanted, agent
    finally:
        await store.close()
    return len(agents)


async def assert_state_on_keyed_partitions(settings: Settings) -> int:
    """Every table row sits on the changelog partition numbered like its contact's keyed
    partition (else a rebalance hands a contact's records and its state to different
    workers). Returns the number of changelog rows checked."""
    from stream_app.core.kafka.topics import TopicNames

    names = TopicNames.from_settings(settings)
    keyed: dict[bytes, int] = {}
    for r in await read_topic(settings.kafka_bootstrap, names.keyed):
        if r.key is not None:
            assert keyed.setdefault(r.key, r.partition) == r.partition, r.key
    checked = 0
    for changelog in names.changelogs:
        for r in await read_topic(settings.kafka_bootstrap, changelog):
            assert r.key in keyed, f"{changelog}: a row for an unknown contact {r.key!r}"
            assert r.partition == keyed[r.key], \
                f"{changelog}[{r.partition}] holds {r.key!r}, keyed on {keyed[r.key]}"
            checked += 1
    return checked


def latest_stats(records: list[Any]) -> dict[tuple[str, str, str | None], tuple]:
    """The latest ``callback-stats`` value per key, in the shape of :func:`truth_counts`'
    tuples: (environment, day, callback agent or None) -> counts."""
    latest: dict[tuple[str, str, str | None], tuple] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        key, value = orjson.loads(r.key), orjson.loads(r.value)
        assert (key["environment_id"], key["day"]) == (value["environment_id"], value["day"])
        assert key.get("callback_agent_id") == value.get("callback_agent_id")
        latest[(key["environment_id"], key["day"], key.get("callback_agent_id"))] = (
            value["total_callbacks_received"], value["callbacks_answered"],
            value["callbacks_unmatched"],
            {s["source_agent_id"]: s["count"] for s in value["callbacks_by_source_agent"]})
    return latest


async def assert_stats_topic_settles(settings: Settings, redis_url: str,
                                     wanted: dict[str, dict[str, tuple]]) -> int:
    """The stats topic's latest value of every (environment, day) of ``wanted`` equals
    it, and every per-agent key's equals what Redis answers for that agent and day (the
    stats endpoint's numbers). Polls (a recheck may still be on its way); returns the
    number of keys checked."""
    from stream_app.core.store.counters import CounterStore

    store = CounterStore.from_url(redis_url, 3600, cluster=settings.redis_cluster)

    async def mismatches() -> list[str]:
        latest = latest_stats(await read_topic(settings.kafka_bootstrap, settings.topic_stats))
        wrong = [f"{env} {day}: topic {latest.get((env, day, None))} != {counts}"
                 for env, days in wanted.items() for day, counts in days.items()
                 if latest.get((env, day, None)) != counts]
        for (env, day, agent), counts in latest.items():
            if agent is not None and env in wanted:
                stored = await stored_counts(store, {env: {day: ()}}, agent)
                if stored[env][day] != counts:
                    wrong.append(f"{env} {day} {agent}: topic {counts} != {stored[env][day]}")
        return wrong

    try:
        await poll(mismatches, lambda wrong: not wrong, timeout=30, interval=0.5,
                   what="the stats topic's latest values equal to the counters")
        latest = latest_stats(await read_topic(settings.kafka_bootstrap, settings.topic_stats))
    finally:
        await store.close()
    return sum(1 for env, _, _ in latest if env in wanted)


async def published_problems(bootstrap: str, topics: set[str]) -> tuple[int, list[str]]:
    """Every record of ``topics`` checked against the schema its ``schema-id`` header
    names, and its ``content-type`` header; (records checked, problems)."""
    from jsonschema import Draft202012Validator, FormatChecker

    from stream_app.core.domain.published import SCHEMAS, schema_document

    validators = {str(s).encode(): Draft202012Validator(schema_document(s),
                                                          format_checker=FormatChecker())
                  for s in SCHEMAS}
    problems, checked = [], 0
    for r in await read_topics(bootstrap, topics):
        checked += 1
        where = f"{r.topic}[{r.partition}]@{r.offset}"
        headers = dict(r.headers or ())
        if headers.get("content-type") != b"application/json":
            problems.append(f"{where}: content-type {headers.get('content-type')!r}")
        validator = validators.get(headers.get("schema-id", b""))
        if validator is None:
            problems.append(f"{where}: schema-id {headers.get('schema-id')!r}")
            continue
        problems += [f"{where}: {e.message}"
                     for e in validator.iter_errors(orjson.loads(r.value))]
    return checked, problems


async def read_topics(bootstrap: str, topics: set[str]) -> list[Any]:
    """Every committed record of every partition of ``topics`` that exist, with one
    consumer."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = sorted(set(await admin.list_topics()) & topics)
        described = await admin.describe_topics(existing) if existing else []
    finally:
        await admin.close()
    tps = [TopicPartition(d["topic"], p["partition"]) for d in described
           for p in d["partitions"]]
    # "earliest": the reset aiokafka starts on assign() must agree with the seek to the
    # beginning below (a "latest" one still in flight lands after it: position = end).
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="earliest",
                                max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps) if tps else {}
        wanted = [tp for tp in tps if ends[tp] > 0]
        if not wanted:
            return []
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        out: list[Any] = []
        while [tp for tp in wanted if await consumer.position(tp) < ends[tp]]:
            for tp, messages in (await consumer.getmany(timeout_ms=500,
                                                        max_records=20_000)).items():
                out.extend(m for m in messages if m.offset < ends[tp])
        return out
    finally:
        await consumer.stop()
