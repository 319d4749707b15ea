"""The operator page in a real browser (headless Chromium): sign in, the numbers equal
the API's, a callback produced to Kafka moves the live number without a reload, a bad
token and a Redis that is down are said clearly, the call search explains a decision.
A screenshot is saved under ``build/test-artifacts/``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from aiokafka import AIOKafkaProducer

from tests.browser import headless_chromium
from tests.conftest import Endpoints
from tests.support import REPO, WorkerProcess, free_port, inbound, outbound, produce

pytestmark = pytest.mark.integration

ARTIFACTS = REPO / "build" / "test-artifacts"
TOKEN = "dashboard-token-1"


@contextmanager
def reader(redis_url: str, environment: str, cluster: bool) -> Iterator[str]:
    """``stream-app reader`` as a child process; yields its base URL."""
    port = free_port()
    env = {**os.environ, "STREAM_APP_REDIS_URL": redis_url, "STREAM_APP_READER_PORT": str(port),
           "STREAM_APP_API_TOKENS": f"{TOKEN}={environment}",
           "STREAM_APP_REDIS_CLUSTER": "true" if cluster else "false"}
    process = subprocess.Popen([sys.executable, "-m", "stream_app", "reader"], env=env,
                               cwd=REPO, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url) or process.poll() is not None, 30, "the reader")
        assert process.poll() is None, "the reader exited"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def api(url: str, path: str) -> dict[str, Any]:
    return requests.get(f"{url}/api/v1{path}", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).json()


def send(endpoints: Endpoints, topic: str, *events: dict[str, Any]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
        await producer.start()
        try:
            await produce(producer, topic, *events)
        finally:
            await producer.stop()
    asyncio.run(run())


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = headless_chromium()
    yield driver
    driver.quit()


def text(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def sign_in(driver: Any, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/dashboard")
    wait_for(lambda: driver.find_element(By.ID, "token").is_displayed(), 10, "the form")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "signin").click()


def test_the_operator_page(worker: WorkerProcess, endpoints: Endpoints, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    env = f"env-ui-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    s = worker.settings
    send(endpoints, s.topic_outbound, outbound(env, "+5511900000001", "agent-1", at,
                                               name="Sales Outbound"))
    calls = [f"{env}-call-{i}" for i in range(3)]
    send(endpoints, s.topic_inbound,
         *[inbound(env, f"+551190000000{i + 1}", c, at, agent="cb-1")
           for i, c in enumerate(calls)])
    with reader(endpoints.redis_url, env, endpoints.redis_cluster) as url:
        wait_for(lambda: api(url, "/callback-agents/stats")["data"]
                 ["total_callbacks_received"] == 3, 60, "the worker counted")

        sign_in(browser, url, "not-the-token")
        wait_for(lambda: "token is wrong" in text(browser, "error"), 15, "the bad-token error")
        assert text(browser, "status") == "token rejected"
        browser.find_element(By.ID, "signout").click()
        assert browser.execute_script("return sessionStorage.length") == 0

        sign_in(browser, url, TOKEN)
        assert TOKEN not in browser.current_url
        today = api(url, "/callback-agents/stats")["data"]["period"]["end"]
        body = api(url, f"/callback-agents/stats?start_date={today}&end_date={today}")["data"]
        wait_for(lambda: text(browser, "today-received") == str(body[
            "total_callbacks_received"]), 20, "today's numbers")
        assert text(browser, "today-unmatched") == str(body["callbacks_unmatched"])
        assert text(browser, "status") == "live"

        sources = api(url, "/callback-agents/stats")["data"]["callbacks_by_source_agent"]
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#sources tr"))
                 == len(sources), 20, "the by-source table")
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in browser.find_elements(By.CSS_SELECTOR, "#sources tr")]
        assert rows == [[r["source_agent_id"], r["name"] or "\u2013", str(r["count"])]
                        for r in sources]
        wait_for(lambda: browser.find_element(By.ID, "chart").get_attribute("data-received"),
                 20, "the chart")
        chart = browser.find_element(By.ID, "chart").get_attribute("data-received")
        assert chart.split(",")[-1] == str(body["total_callbacks_received"])

        before = int(text(browser, "today-received"))
        send(endpoints, s.topic_inbound, inbound(env, "+5511900000009", f"{env}-new", at,
                                                 agent="cb-2"))
        wait_for(lambda: text(browser, "today-received") == str(before + 1), 30,
                 "the live number to move without a reload")
        wait_for(lambda: browser.find_element(By.ID, "chart").get_attribute(
            "data-received").split(",")[-1] == str(before + 1), 20, "the chart to follow")

        decided = wait_for(lambda: (r := api(url, f"/callbacks/{calls[0]}"))["data"][
            "decision"] != "pending" and r, 60, "a decision")
        browser.find_element(By.ID, "call-id").send_keys(calls[0])
        browser.find_element(By.ID, "call-search").click()
        cell = wait_for(lambda: browser.find_elements(
            By.CSS_SELECTOR, "#call-table td[data-field=decision]"), 10, "the explanation")
        assert cell[0].text == decided["data"]["decision"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    with reader(f"redis://127.0.0.1:{free_port()}/0", env, False) as away:
        sign_in(browser, away, TOKEN)
        wait_for(lambda: "Redis is down" in text(browser, "error"), 20, "the Redis-down error")
