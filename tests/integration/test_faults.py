"""Faults on services of the module's own (killing them disturbs no other test):
the broker SIGKILLed under traffic ends exact with no manual step, and the worker's
health endpoints tell the truth through a Redis outage. ``make faults`` runs the whole
matrix (``benchmarks/faults.py``)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from benchmarks.faults import run_fault
from stream_app.core.store.counters import CounterStore
from tests.support import WorkerProcess, inbound, outbound, poll, produce, worker_env
from tests.topology import Services, own_services

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own() -> Iterator[Services]:
    with own_services() as services:
        yield services


async def test_a_broker_sigkill_under_traffic_ends_exact(own: Services, tmp_path: Path) -> None:
    run = await run_fault("broker-sigkill", own, tmp_path, seed=5, seconds=20.0,
                          callbacks=400, outage=6.0, grace=3.0, settle_timeout=150.0,
                          hit_window=(0.2, 0.4))
    print(f"\n{run.line()}")
    assert run.exact, run.mismatches[:5] + run.notes + run.worker_errors
    assert run.missing_offsets == 0
    assert run.restarts == {"exited": 0, "liveness": 0}, "\n".join(
        ["recovered only by a restart; the workers' errors:", *run.worker_errors])
    assert run.failed_sends > 0, "the broker outage did not hit the traffic"
    assert run.duplicates is not None, "the duplicates a subscriber saw were not counted"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, worker: WorkerProcess, path: str
              ) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{worker.env['STREAM_APP_WORKER_WEB_PORT']}{path}"
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            body = await (response.json() if path != "/debug/tasks" else response.text())
            return response.status, body
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 0, repr(exc)


async def test_health_tells_the_truth_through_a_redis_outage(
        own: Services, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """Ready once assigned and flowing; with Redis killed and input waiting: not ready
    (Redis unreachable) and, after STALL_SECONDS, not live; live and ready again once
    Redis is back, and the input is then counted."""
    worker = WorkerProcess(worker_env(own.kafka, own.redis_url, tmp_path, stall_seconds=4,
                                      match_grace_seconds=1))
    worker.start()
    try:
        await poll(lambda: get(http, worker, "/readyz"), lambda r: r[0] == 200, timeout=90,
                   what="the worker to become ready")
        assert (await get(http, worker, "/healthz"))[0] == 200
        status, dump = await get(http, worker, "/debug/tasks")
        assert status == 200 and "== loop main" in dump and "== loop consumer-thread" in dump
        await asyncio.get_running_loop().run_in_executor(None, own.kill, "redis",
                                                         signal.SIGKILL)
        try:
            await _send_traffic(own, worker)
            await poll(lambda: get(http, worker, "/readyz"),
                       lambda r: r[0] == 503 and r[1]["checks"]["redis_reachable"] is False,
                       timeout=30, what="not ready, Redis unreachable")
            status, body = await poll(lambda: get(http, worker, "/healthz"),
                                      lambda r: r[0] == 503, timeout=60,
                                      what="liveness to fail on the stall")
            assert body["status"] == "stalled" and body["stalled_seconds"] > 4
            # logged by the first failing answer itself: a supervisor kills on it
            assert "stalled for" in worker.log.read_text(), "no task dump with the 503"
            metrics = await _metrics(http, worker)
            assert _value(metrics, "callback_stats_stalled_seconds") > 4
            assert _value(metrics, 'callback_stats_outage_retries_total{service="redis"}') > 0
        finally:
            await asyncio.get_running_loop().run_in_executor(None, own.start, "redis")
        await poll(lambda: get(http, worker, "/healthz"), lambda r: r[0] == 200, timeout=60,
                   what="live again once Redis is back")
        await poll(lambda: get(http, worker, "/readyz"), lambda r: r[0] == 200, timeout=60,
                   what="ready again once Redis is back")
        async with CounterStore.from_url(own.redis_url, 3600) as store:
            await poll(lambda: store.read_stats("env-health", ["2024-01-15"]),
                       lambda st: st.received == 20, timeout=60, what="the input counted")
        assert "callback_stats_event_loop_lag_seconds_bucket" in await _metrics(http, worker)
    finally:
        worker.stop()


async def _send_traffic(own: Services, worker: WorkerProcess) -> None:
    s = worker.settings
    producer = AIOKafkaProducer(bootstrap_servers=own.kafka)
    await producer.start()
    try:
        await produce(producer, s.topic_outbound,
                      outbound("env-health", "+5511999990000", "a1", "2024-01-15T08:00:00Z"))
        await produce(producer, s.topic_inbound,
                      *[inbound("env-health", "+5511999990000", f"hc-{i}",
                                "2024-01-15T09:00:00Z") for i in range(20)])
    finally:
        await producer.stop()


async def _metrics(http: aiohttp.ClientSession, worker: WorkerProcess) -> str:
    url = f"http://127.0.0.1:{worker.env['STREAM_APP_WORKER_WEB_PORT']}/metrics"
    async with http.get(url) as response:
        return await response.text()


def _value(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")
