"""Any bytes in headers, path or query: the contract's JSON 4xx, never a 500, no token logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.api.responses import STATS_PATH
from tests.conftest import Endpoints
from tests.integration.http import http_client

pytestmark = pytest.mark.integration

SECRET = "s3cret-token-ABCDEFGH"


@pytest.fixture
async def client(endpoints: Endpoints) -> AsyncIterator[TestClient]:
    client = await http_client(endpoints, f"{SECRET}=env-hostile")
    yield client
    await client.close()


async def raw(client: TestClient, request: bytes) -> tuple[int, dict]:
    """Send raw bytes; return the status and the JSON body (fails if not JSON)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    return status, orjson.loads(body)


def request(path: bytes = STATS_PATH.encode(), *headers: bytes) -> bytes:
    lines = [b"GET " + path + b" HTTP/1.1", b"Host: x", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("authorization", [
    b"Bearer \xff\xfe\xfd",                 # not UTF-8
    b"Bearer caf\xe9",                      # latin-1
    "Bearer café-☎".encode(),               # UTF-8, not ASCII
    b"Bearer " + SECRET.encode() + b"\xe9",  # a real token with a byte more
    b"bearer",
    b"Basic " + SECRET.encode(),
])
async def test_odd_authorization_bytes_are_401(client: TestClient, authorization: bytes,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, body = await raw(client, request(STATS_PATH.encode(),
                                             b"Authorization: " + authorization))
    assert (status, body["code"], body["success"]) == (401, "UNAUTHORIZED", False)
    assert SECRET not in caplog.text and "caf" not in caplog.text


@pytest.mark.parametrize(("what", "wire"), [
    ("over-long header", request(STATS_PATH.encode(),
                                 b"Authorization: Bearer " + SECRET.encode() + b"x" * 20_000)),
    ("NUL in a header", request(STATS_PATH.encode(),
                                b"Authorization: Bearer " + SECRET.encode() + b"\x00")),
    ("NUL in the path", request(b"/api/v1/\x00stats")),
    ("too many headers", request(STATS_PATH.encode(),
                                 *[f"X-H{i}: {i}".encode() for i in range(300)])),
])
async def test_requests_aiohttp_rejects_get_json_4xx(client: TestClient, what: str,
                                                     wire: bytes,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, body = await raw(client, wire)
    assert 400 <= status < 500, what
    assert body["success"] is False and body["code"] == "BAD_REQUEST"
    assert SECRET not in caplog.text, f"{what}: the token reached a log"


@pytest.mark.parametrize("path", [
    STATS_PATH.encode() + b"?start_date=%FF%FE&end_date=2024-01-01",
    STATS_PATH.encode() + b"?start_date=\xff\xfe",
    STATS_PATH.encode() + b"?start_date=2024-02-30",
    STATS_PATH.encode() + b"?end_date=" + b"9" * 5000,
    b"/api/v1/callback-agents/%FF",
    b"/\xff\xfe",
])
async def test_odd_paths_and_queries_are_json_4xx(client: TestClient, path: bytes) -> None:
    status, body = await raw(client, request(path, b"Authorization: Bearer " + SECRET.encode()))
    assert 400 <= status < 500 and body["success"] is False, (status, body)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(max_size=200), query=st.binary(max_size=200))
async def test_any_bytes_never_give_a_500(client: TestClient, header: bytes,
                                          query: bytes) -> None:
    wire = request(STATS_PATH.encode() + b"?start_date=" + query.replace(b" ", b"+"),
                   b"Authorization: Bearer " + header)
    status, body = await raw(client, wire)
    assert status < 500 and body["success"] is (status == 200)
