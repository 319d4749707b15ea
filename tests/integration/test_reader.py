"""The HTTP stats API on counters written by the real worker, and simulate -> worker -> reader."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream_app.api.reader import create_reader
from stream_app.api.responses import STATS_PATH
from stream_app.core.store.counters import CounterStore
from stream_app.dev.simulate import Scenario, generate, produce
from stream_app.settings import Settings
from tests.conftest import Endpoints
from tests.integration.http import DAY, NOW, get, http_client, validate
from tests.support import WorkerProcess, poll

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(endpoints: Endpoints, populated: dict[str, str]) -> AsyncIterator[TestClient]:
    tokens = f"token-a={populated['a']},token-b={populated['b']}"
    client = await http_client(endpoints, tokens)
    yield client
    await client.close()


async def test_every_field_sorting_and_names(traffic, client) -> None:
    status, body = await get(client, "token-a", start_date=DAY, end_date=DAY)
    assert status == 200
    assert body == {"success": True, "data": {
        "period": {"start": DAY, "end": DAY},
        "total_callbacks_received": 7, "callbacks_answered": 4, "callbacks_unmatched": 1,
        "callbacks_by_source_agent": [
            {"source_agent_id": "agent-1", "name": None, "count": 3},
            {"source_agent_id": "agent-2", "name": "Sales Outbound", "count": 3}]}}


async def test_a_token_sees_only_its_environment(traffic, client) -> None:
    _, body = await get(client, "token-b", start_date=DAY, end_date=DAY)
    data = body["data"]
    assert data["total_callbacks_received"] == 1
    assert [r["source_agent_id"] for r in data["callbacks_by_source_agent"]] == ["agent-9"]


async def test_dates_outside_the_data_give_zeros(traffic, client) -> None:
    _, body = await get(client, "token-a", start_date="2024-05-11", end_date="2024-05-12")
    assert body["data"]["total_callbacks_received"] == 0
    assert body["data"]["callbacks_by_source_agent"] == []


@pytest.mark.parametrize(("query", "code"), [
    ({"start_date": "2024-02-30"}, "INVALID_DATE"),
    ({"end_date": "2024-1-5"}, "INVALID_DATE"),
    ({"start_date": "yesterday"}, "INVALID_DATE"),
    ({"start_date": "2024-05-10", "end_date": "2024-05-09"}, "INVALID_DATE_RANGE"),
    ({"start_date": "2023-05-10", "end_date": "2024-05-10"}, "DATE_RANGE_TOO_LARGE"),
])
async def test_bad_dates(client, query: dict[str, str], code: str) -> None:
    status, body = await get(client, "token-a", **query)
    assert (status, body["success"], body["code"]) == (400, False, code)
    assert body["message"]


async def test_366_days_inclusive_is_allowed(client) -> None:
    status, body = await get(client, "token-a", start_date="2023-05-11", end_date="2024-05-10")
    assert status == 200 and body["data"]["period"]["start"] == "2023-05-11"


@pytest.mark.parametrize("header", [None, "token-a", "Basic token-a", "Bearer ", "Bearer nope",
                                    "Bearer token-a-but-longer"])
async def test_missing_malformed_and_unknown_tokens(client, header: str | None,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": header} if header is not None else {}
    response = await client.get(STATS_PATH, headers=headers)
    body = await response.json()
    validate(body, 401)
    assert (response.status, body["code"]) == (401, "UNAUTHORIZED")
    assert "token-a" not in body["message"] and "token-a" not in caplog.text


async def test_defaults_around_midnight_in_the_configured_zone(endpoints, populated) -> None:
    tokens = f"token-a={populated['a']}"
    for timezone, today in (("America/Sao_Paulo", date(2024, 5, 10)),
                            ("UTC", date(2024, 5, 11))):
        client = await http_client(endpoints, tokens, timezone)
        try:
            _, body = await get(client, "token-a")
        finally:
            await client.close()
        assert body["data"]["period"] == {"start": (today - timedelta(days=30)).isoformat(),
                                          "end": today.isoformat()}


async def test_operational_endpoints(client) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await get(client, "token-a", start_date=DAY, end_date=DAY)
    answer = await client.get("/metrics")
    metrics = await answer.text()
    assert 'callback_stats_reader_requests_total{status="200"}' in metrics
    assert "callback_stats_events_consumed_total" not in metrics, "a worker metric"
    assert "process_cpu_seconds_total" in metrics
    assert answer.headers["Server"] == "callback-stats", "no versions advertised"
    spec = await (await client.get("/openapi.json")).json()
    assert STATS_PATH in spec["paths"]
    missing = await client.get("/nope")
    assert missing.status == 404 and (await missing.json())["code"] == "NOT_FOUND"


@pytest.mark.parametrize("cluster", [False, True])
async def test_redis_down_is_a_503_not_a_trace(endpoints, cluster: bool) -> None:
    """Also with the cluster client, whose "cannot be connected" is no ``RedisError``."""
    settings = Settings(redis_url="redis://127.0.0.1:1/0", api_tokens="t=e")
    store = CounterStore.from_url(settings.redis_url, settings.dedup_ttl_seconds, cluster)
    client = TestClient(TestServer(create_reader(settings, store, lambda: NOW)))
    await client.start_server()
    try:
        status, body = await get(client, "t")
        assert (status, body["code"]) == (503, "UNAVAILABLE")
        assert (await client.get("/readyz")).status == 503
    finally:
        await client.close()


async def test_simulate_worker_reader_equals_truth(worker: WorkerProcess, endpoints) -> None:
    s = worker.settings
    # The module's other traffic is on DAY: retention follows each partition's stream
    # time, so a scenario months older would be (correctly) late on this worker.
    scenario = Scenario(seed=5, environments=2, callbacks=400, contacts=120,
                        day=date.fromisoformat(DAY),
                        environment_prefix=f"e2e-{uuid.uuid4().hex[:6]}")
    traffic = generate(scenario)
    truth = traffic.truth(scenario.window_seconds, ZoneInfo("UTC"))
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound, "config": s.topic_config}
    await produce(s.kafka_bootstrap, topics, traffic, rate=1000)
    tokens = ",".join(f"tok-{env}={env}" for env in truth)
    client = await http_client(endpoints, tokens)
    day = scenario.day.isoformat()
    try:
        for env, by_day in truth.items():
            async def fetch(env: str = env) -> dict:
                return (await get(client, f"tok-{env}", start_date=day, end_date=day))[1]

            expected = {"period": {"start": day, "end": day}, **by_day[day]}
            body = await poll(fetch, lambda b, expected=expected: b["data"] == expected,
                              what=f"{env} equals truth")
            assert body["data"] == expected
    finally:
        await client.close()


async def test_the_published_records_schemas_are_served(client) -> None:
    """Listed at /schemas (no token), each at its URL, each the package's own, each in
    the OpenAPI document."""
    from stream_app.core.domain.published import SCHEMAS, schema_document

    response = await client.get("/schemas")
    assert response.status == 200
    listing = (await response.json())["schemas"]
    assert [entry["id"] for entry in listing] == [str(s) for s in SCHEMAS]
    for entry, schema in zip(listing, SCHEMAS, strict=True):
        served = await client.get(entry["url"])
        assert served.status == 200
        assert served.headers["Content-Type"].startswith("application/schema+json")
        assert await served.json() == schema_document(schema)
    spec = await (await client.get("/openapi.json")).json()
    assert {str(s) for s in SCHEMAS} <= set(spec["components"]["schemas"])
    assert "/schemas/{name}" in spec["paths"]
    missing = await client.get("/schemas/nothing.v9.json")
    assert missing.status == 404 and (await missing.json())["code"] == "NOT_FOUND"


async def test_a_request_is_a_server_span_child_of_its_traceparent(traffic, client) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from stream_app.observe import tracing

    exporter = InMemorySpanExporter()
    tracing.configure("reader", environ={}, exporter=exporter)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    try:
        answer = await client.get(f"{STATS_PATH}?start_date={DAY}&end_date={DAY}",
                                  headers={"Authorization": "Bearer token-a",
                                           "traceparent": parent})
        assert answer.status == 200
    finally:
        tracing.configure("reader", environ={})
    (span,) = exporter.get_finished_spans()
    assert span.name == f"GET {STATS_PATH}"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert dict(span.attributes or {}) == {"http.request.method": "GET", "http.route": STATS_PATH,
                                           "http.response.status_code": 200}
