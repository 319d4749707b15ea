"""Live ops (contract §4.1) on counters the real worker wrote from real Kafka: the
per-callback-agent stats and the explanation of each callback against the oracle, the
live stream (first event, a callback produced to Kafka pushed, resume, coalescing),
the answer cache never stale, and hostile input never a 500."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from stream_app.api.live import MIN_GAP_SECONDS
from stream_app.api.openapi import SPEC
from stream_app.api.reader import READER
from stream_app.api.responses import LIVE_PATH, STATS_PATH
from stream_app.core.store.counters import CounterStore, InboundWrite
from stream_app.core.store.layout import call_key
from tests.conftest import Endpoints
from tests.integration.http import DAY, PHONES, http_client
from tests.integration.test_cli import run
from tests.support import (
    WorkerProcess,
    calls_from_topics,
    inbound,
    outbound,
    poll,
    produce,
    truth_from_topics,
)

pytestmark = pytest.mark.integration

OLD_DAY = (date.fromisoformat(DAY) - timedelta(days=40)).isoformat()
"""A callback this far behind the newest one is decided late (lateness: 30 days)."""


@pytest.fixture(scope="module")
def envs() -> dict[str, str]:
    return {"a": f"env-live-a-{uuid.uuid4().hex[:8]}", "b": f"env-live-b-{uuid.uuid4().hex[:8]}"}


@pytest.fixture
async def calls(worker: WorkerProcess, producer: AIOKafkaProducer, redis: Redis,
                envs: dict[str, str]) -> dict[str, str]:
    """Env a: matched, unmatched, answered, a call whose records name two callback agents
    (the earliest wins), a late one; env b: one callback of cb-1 (isolation)."""
    a, b = envs["a"], envs["b"]
    store = CounterStore(redis, 3600)
    ids = {name: f"{a}-{name}" for name in ("matched", "unmatched", "two-agents", "late")}
    ids["b"] = f"{b}-call"
    if await store.call_record(a, ids["late"]) is None:
        s = worker.settings
        await produce(producer, s.topic_outbound,
                      outbound(a, PHONES[0], "agent-1", f"{DAY}T08:00:00Z", name="Sales"),
                      outbound(a, PHONES[2], "agent-2", f"{DAY}T07:00:00Z"),
                      outbound(b, PHONES[0], "agent-9", f"{DAY}T08:00:00Z"))
        await produce(producer, s.topic_inbound,
                      inbound(a, PHONES[0], ids["matched"], f"{DAY}T10:00:00Z", agent="cb-1"),
                      inbound(a, PHONES[0], ids["matched"], f"{DAY}T10:00:05Z", "answered",
                              agent="cb-1"),
                      inbound(a, PHONES[1], ids["unmatched"], f"{DAY}T11:00:00Z", agent="cb-2"),
                      inbound(a, PHONES[2], ids["two-agents"], f"{DAY}T12:00:00Z", agent="cb-2"),
                      inbound(b, PHONES[0], ids["b"], f"{DAY}T10:00:00Z", agent="cb-1"))
        await produce(producer, s.topic_inbound,
                      inbound(a, PHONES[2], ids["two-agents"], f"{DAY}T12:00:09Z", "answered",
                              agent="cb-1"),
                      inbound(a, PHONES[0], ids["late"], f"{OLD_DAY}T10:00:00Z", agent="cb-1"))

        async def decided() -> list[Any]:
            return [await store.call_record(e, c) for e, c in
                    [(a, ids[n]) for n in ("matched", "unmatched", "two-agents", "late")]
                    + [(b, ids["b"])]]

        await poll(decided, lambda rs: all(r and r.o for r in rs), timeout=120,
                   what="every callback decided")
    return ids


@pytest.fixture
async def client(endpoints: Endpoints, envs: dict[str, str]) -> AsyncIterator[TestClient]:
    client = await http_client(endpoints, f"token-live-a={envs['a']},token-live-b={envs['b']}")
    yield client
    await client.close()


A = {"Authorization": "Bearer token-live-a"}
B = {"Authorization": "Bearer token-live-b"}


async def test_per_agent_stats_equal_the_oracle(calls, client, worker, envs) -> None:
    for agent in ("cb-1", "cb-2", "never-seen"):
        truth = await truth_from_topics(worker.settings, agent)
        for env, headers in ((envs["a"], A), (envs["b"], B)):
            for day in (DAY, OLD_DAY):
                response = await client.get(f"/api/v1/callback-agents/{agent}/stats",
                                            params={"start_date": day, "end_date": day},
                                            headers=headers)
                body = await response.json()
                assert response.status == 200
                want = truth.get(env, {}).get(day, _zeros())
                assert {k: v for k, v in body["data"].items() if k != "period"} == want, \
                    (agent, env, day)
    # The per-agent numbers add up to the environment's.
    whole = await (await client.get(STATS_PATH, params={"start_date": DAY, "end_date": DAY},
                                     headers=A)).json()
    parts = [await (await client.get(f"/api/v1/callback-agents/{agent}/stats",
                                     params={"start_date": DAY, "end_date": DAY},
                                     headers=A)).json() for agent in ("cb-1", "cb-2")]
    assert whole["data"]["total_callbacks_received"] == sum(
        p["data"]["total_callbacks_received"] for p in parts) == 3


def _zeros() -> dict[str, Any]:
    return {"total_callbacks_received": 0, "callbacks_answered": 0, "callbacks_unmatched": 0,
            "callbacks_by_source_agent": []}


async def test_each_callback_is_explained_as_the_oracle_decided(calls, client, worker,
                                                               envs) -> None:
    truth = {c.call_id: c for c in await calls_from_topics(worker.settings)}
    for name in ("matched", "unmatched", "two-agents", "late"):
        response = await client.get(f"/api/v1/callbacks/{calls[name]}", headers=A)
        assert response.status == 200, name
        got, want = (await response.json())["data"], truth[calls[name]]
        assert got["day"] == want.day and got["answered"] == want.answered, name
        assert got["callback_agent_id"] == want.callback_agent_id, name
        assert got["decision"] == ("matched" if want.source_agent_id else "unmatched"), name
        assert (got["source_agent_id"], got["source_call_id"]) == (want.source_agent_id,
                                                                 want.source_call_id), name
        assert datetime.fromisoformat(got["time"]) == datetime.fromtimestamp(want.t, UTC)
        assert got["late"] is (name == "late"), name
        assert got["cutoff"] is not None
    assert truth[calls["two-agents"]].callback_agent_id == "cb-2", "the earliest record's"


async def test_unknown_expired_and_foreign_callbacks_are_404(calls, client, redis,
                                                            envs) -> None:
    async def status(call_id: str, headers: dict[str, str]) -> int:
        response = await client.get(f"/api/v1/callbacks/{call_id}", headers=headers)
        body = await response.json()
        assert body["success"] is False or response.status == 200
        return response.status

    assert await status("no-such-call", A) == 404
    assert await status(calls["matched"], B) == 404, "another environment's call"
    assert await status(calls["b"], B) == 200
    expiring = f"{envs['a']}-expiring"
    store = CounterStore(redis, 1)  # a one-second TTL, as STREAM_APP_DEDUP_TTL_SECONDS=1
    await store.record_inbound([InboundWrite(envs["a"], expiring, "received",
                                             time.time(), "2031-01-01", "ev-x", None, "cb-1")])
    assert await status(expiring, A) == 200
    await poll(lambda: redis.exists(call_key(envs["a"], expiring)), lambda n: n == 0,
               timeout=10, what="the record expired")
    assert await status(expiring, A) == 404
    assert (await client.get(f"/api/v1/callbacks/{calls['b']}", headers={})).status == 401


class Events:
    """The stream's events as dicts of their fields (comments skipped). Each line is
    awaited on its own, so a timed-out wait leaves the stream usable."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 30.0) -> dict[str, str]:
        """The next event carrying data."""
        fields: dict[str, str] = {}
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    return fields
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


async def test_a_callback_produced_to_kafka_is_pushed_to_an_open_stream(
        calls, client, worker, producer, envs) -> None:
    query = {"start_date": DAY, "end_date": DAY}
    response = await client.get(LIVE_PATH, params=query, headers=A)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = Events(response)
    first = await stream.next()
    plain = await client.get(STATS_PATH, params=query, headers=A)
    assert first["data"].encode() == await plain.read(), "exactly the stats body"
    before = orjson.loads(first["data"])["data"]["total_callbacks_received"]

    sent = time.monotonic()
    await produce(producer, worker.settings.topic_inbound,
                  inbound(envs["a"], PHONES[5], f"{envs['a']}-{uuid.uuid4().hex[:6]}",
                          f"{DAY}T13:00:00Z", agent="cb-1"))
    event = await stream.next()
    latency = time.monotonic() - sent
    assert orjson.loads(event["data"])["data"]["total_callbacks_received"] == before + 1
    assert int(event["id"]) > int(first["id"])
    print(f"\nKafka -> worker -> Redis -> notification -> stream: {latency * 1000:.0f} ms")
    response.close()


async def test_resume_burst_coalescing_and_the_cache_is_never_stale(client, redis,
                                                                   envs) -> None:
    env, store = envs["a"], CounterStore(redis, 3600)
    reader = client.app[READER]
    await poll(lambda: asyncio.sleep(0, reader.feed.live), bool, what="subscribed")
    day = "2030-01-01"
    query = {"start_date": day, "end_date": day}

    async def write(n: int) -> None:
        await store.record_inbound([InboundWrite(env, f"burst-{uuid.uuid4().hex}", "received",
                                                 1893499200.0 + i, day, f"e{i}", None, "cb-9")
                                    for i in range(n)])

    response = await client.get(LIVE_PATH, params=query, headers=A)
    stream = Events(response)
    first = await stream.next()
    response.close()

    # Resumed at the version it has: no first event; the next change is pushed.
    response = await client.get(LIVE_PATH, params=query,
                                headers={**A, "Last-Event-ID": first["id"]})
    stream = Events(response)
    with pytest.raises(TimeoutError):
        await stream.next(timeout=1.5)
    await write(1)
    assert orjson.loads((await stream.next())["data"])["data"][
        "total_callbacks_received"] == 1

    # A burst of 40 changes over ~2 s: far fewer pushes, the last one final.
    began = time.monotonic()
    for _ in range(40):
        await write(1)
        await asyncio.sleep(0.05)
    pushes, total = 0, 0
    while total != 41:
        total = orjson.loads((await stream.next())["data"])["data"][
            "total_callbacks_received"]
        pushes += 1
    assert pushes <= (time.monotonic() - began) / MIN_GAP_SECONDS + 2, pushes
    response.close()

    # Read at once after the notification: the new number, never the cached one.
    for n in range(5):
        seen = reader.feed.notifications
        await write(1)
        await poll(lambda: asyncio.sleep(0, reader.feed.notifications),
                   lambda v, seen=seen: v > seen, timeout=5, what="the notification")
        body = await (await client.get(STATS_PATH, params=query, headers=A)).json()
        assert body["data"]["total_callbacks_received"] == 42 + n
    hits = reader.cache.hits
    for _ in range(20):
        await client.get(STATS_PATH, params=query, headers=A)
    assert reader.cache.hits == hits + 20, "unchanged: served without Redis"


@pytest.mark.parametrize("path", [
    "/api/v1/callbacks/%FF%FE", "/api/v1/callbacks/%00", "/api/v1/callbacks/" + "x" * 5000,
    "/api/v1/callbacks/a%2Fb", "/api/v1/callback-agents/%FF/stats",
    "/api/v1/callback-agents/%00%0A/stats/live?start_date=2024-01-01&end_date=2024-01-01",
    "/api/v1/callback-agents/x/stats?start_date=9999-12-31&end_date=9999-12-31",
    "/api/v1/callback-agents/x/stats?start_date=nope", "/api/v1/callbacks/x?y=1",
    "/api/v1/callback-agents/stats/live?start_date=2024-02-30",
    "/api/v1/callback-agents/stats/live?start_date=2024-01-01&start_date=2024-01-02",
])
async def test_hostile_input_never_gives_a_500(client, path: str) -> None:
    response = await client.get(path, headers=A)
    assert response.status < 500, (path, response.status)
    if response.headers["Content-Type"].startswith("application/json"):
        assert "success" in await response.json()
    response.close()


async def test_new_endpoints_refuse_bad_tokens_and_dates(client) -> None:
    for path in ("/api/v1/callback-agents/x/stats", LIVE_PATH,
                 "/api/v1/callback-agents/x/stats/live", "/api/v1/callbacks/x"):
        response = await client.get(path, headers={"Authorization": "Bearer wrong"})
        assert (response.status, (await response.json())["code"]) == (401, "UNAUTHORIZED")
    response = await client.get(LIVE_PATH, params={"start_date": "2024-13-01"}, headers=A)
    assert (response.status, (await response.json())["code"]) == (400, "INVALID_DATE")


def test_openapi_documents_every_new_endpoint() -> None:
    paths = SPEC["paths"]
    for path in ("/api/v1/callback-agents/{agent_id}/stats", LIVE_PATH,
                 "/api/v1/callback-agents/{agent_id}/stats/live", "/api/v1/callbacks/{call_id}"):
        assert "get" in paths[path], path
    assert "text/event-stream" in paths[LIVE_PATH]["get"]["responses"]["200"]["content"]
    assert "CallResponse" in SPEC["components"]["schemas"]


async def test_the_cli_prints_what_the_endpoints_answer(calls, client, endpoints, envs) -> None:
    env = {"STREAM_APP_REDIS_URL": endpoints.redis_url, **{
        f"STREAM_APP_{k}": v for k, v in endpoints.worker_settings().items()}}
    result = run("stats", "--environment", envs["a"], "--start", DAY, "--end", DAY,
                 "--callback-agent", "cb-2", "--json", env=env)
    assert result.returncode == 0, result.stderr
    http = await client.get("/api/v1/callback-agents/cb-2/stats",
                            params={"start_date": DAY, "end_date": DAY}, headers=A)
    assert orjson.loads(result.stdout) == await http.json()

    result = run("explain", calls["two-agents"], "--environment", envs["a"], "--json", env=env)
    assert result.returncode == 0, result.stderr
    http = await client.get(f"/api/v1/callbacks/{calls['two-agents']}", headers=A)
    assert orjson.loads(result.stdout) == await http.json()
    table = run("explain", calls["two-agents"], "--environment", envs["a"], env=env)
    assert "cb-2" in table.stdout and "matched" in table.stdout
    missing = run("explain", "no-such-call", "--environment", envs["a"], env=env)
    assert missing.returncode != 0 and "NOT_FOUND" in missing.stderr
