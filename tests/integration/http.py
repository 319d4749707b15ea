"""HTTP helpers for the reader tests: an in-process reader on real Redis, OpenAPI checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jsonschema
from aiohttp.test_utils import TestClient, TestServer

from stream_app.api.openapi import SPEC
from stream_app.api.reader import create_reader
from stream_app.api.responses import STATS_PATH
from stream_app.core.store.counters import CounterStore
from stream_app.settings import Settings
from tests.conftest import Endpoints

PHONES = [f"+55119000000{i:02d}" for i in range(20)]
DAY = "2024-05-10"
NOW = datetime(2024, 5, 11, 2, 30, tzinfo=UTC)  # 2024-05-10 23:30 in Sao Paulo


async def http_client(endpoints: Endpoints, tokens: str, timezone: str = "UTC",
                      clock: Callable[[], datetime] = lambda: NOW) -> TestClient:
    settings = Settings(redis_url=endpoints.redis_url, api_tokens=tokens, timezone=timezone,
                        redis_cluster=endpoints.redis_cluster)
    store = CounterStore.from_settings(settings)
    client = TestClient(TestServer(create_reader(settings, store, clock)))
    await client.start_server()
    return client


def validate(body: dict[str, Any], status: int) -> None:
    """Check a real response against /openapi.json."""
    response = SPEC["paths"][STATS_PATH]["get"]["responses"][str(status)]
    schema = {**response["content"]["application/json"]["schema"],
              "components": SPEC["components"]}
    jsonschema.validate(body, schema)


async def get(client: TestClient, token: str | None, **query: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get(STATS_PATH, params=query, headers=headers)
    body = await response.json()
    validate(body, response.status)
    return response.status, body
