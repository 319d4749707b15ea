"""Schemathesis against the real reader process: no 5xx for any request the OpenAPI
document lets it generate (valid and invalid), every answer in the documented shape,
and the date rules a JSON schema cannot state checked against their own oracle."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from stream_app.api.openapi import SPEC
from tests.conftest import Endpoints
from tests.support import REPO, free_port

pytestmark = pytest.mark.integration

TOKEN = "schema-token-1"
schema = schemathesis.openapi.from_dict(SPEC).exclude(path_regex=r"/live$")
"""The live streams never end, so they are tested in ``test_live_ops.py`` instead."""


@pytest.fixture(scope="module")
def reader_url(endpoints: Endpoints) -> Iterator[str]:
    """``stream-app reader`` as a child process, on a free port."""
    port = free_port()
    env = {**os.environ, "STREAM_APP_REDIS_URL": endpoints.redis_url,
           "STREAM_APP_READER_PORT": str(port),
           "STREAM_APP_API_TOKENS": f"{TOKEN}=env-schema"}
    process = subprocess.Popen([sys.executable, "-m", "stream_app", "reader"], env=env,
                               cwd=REPO, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "no reader"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def date_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    """The rules across the two dates and today (in prose in the document): with a good
    token and real dates the answer is 200 exactly when start <= end and the period
    covers at most 366 days, else the 400 code that names the broken rule."""
    if not case.operation.path.endswith("/stats"):
        return None
    query = case.query or {}
    auth = (case.headers or {}).get("Authorization")
    if response.status_code == 401 or auth not in (None, f"Bearer {TOKEN}"):
        return None
    if not set(query) <= {"start_date", "end_date"}:
        return None
    try:
        parsed = {k: date.fromisoformat(v) for k, v in query.items()
                  if isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-"}
    except ValueError:
        return None
    if len(parsed) != len(query):
        return None
    today = datetime.now(UTC).date()
    end = parsed.get("end_date", today)
    start = parsed.get("start_date", today - timedelta(days=30))
    if start > end:
        expected = (400, "INVALID_DATE_RANGE")
    elif (end - start).days + 1 > 366:
        expected = (400, "DATE_RANGE_TOO_LARGE")
    else:
        expected = (200, None)
    got = (response.status_code, None if response.status_code == 200
           else response.json().get("code"))
    assert got == expected, f"{query}: {got}, expected {expected}"
    return None


@schema.parametrize()
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_reader_keeps_its_documented_contract(case: Any, reader_url: str) -> None:
    # positive_data_acceptance would take a 400 for dates the schema allows as a failure;
    # which pairs of real dates are accepted is checked exactly by ``date_rules``.
    case.call_and_validate(base_url=reader_url,
                           headers={"Authorization": f"Bearer {TOKEN}"},
                           additional_checks=[date_rules],
                           excluded_checks=[positive_data_acceptance])


@pytest.mark.parametrize("query", [
    "start_date=9999-12-31&end_date=9999-12-31",
    "start_date=9999-01-01&end_date=9999-12-31",
    "start_date=0001-01-01&end_date=0001-01-01",
    "start_date=0001-01-01",
    "end_date=0001-01-15",
    "start_date=9426-07-12",
])
def test_dates_at_both_ends_of_the_calendar_never_give_a_5xx(reader_url: str,
                                                             query: str) -> None:
    response = requests.get(f"{reader_url}/api/v1/callback-agents/stats?{query}",
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code in (200, 400), response.text
    assert response.json()["success"] is (response.status_code == 200)


@pytest.mark.parametrize("method", ["TRACE", "POST", "PUT", "DELETE", "PATCH"])
def test_a_wrong_method_is_405_with_allow(reader_url: str, method: str) -> None:
    response = requests.request(method, f"{reader_url}/api/v1/callback-agents/stats",
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.json() == {"success": False, "message": "Method Not Allowed",
                               "code": "METHOD_NOT_ALLOWED"}
