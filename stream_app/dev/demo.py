"""The main job, end to end on one machine: services, worker, reader, a simulated day of
traffic, the stats fetched over HTTP and printed, and a comparison with the truth."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from rich.console import Console

from stream_app.api.responses import STATS_PATH, StatsResponse
from stream_app.dev import services
from stream_app.dev.processes import ChildDied, StreamAppProcess, check_children
from stream_app.dev.simulate import Scenario, produce_scenario
from stream_app.ports import refuse_busy
from stream_app.settings import Settings, load_settings
from stream_app.terminal import print_stats

SETTLE_TIMEOUT_SECONDS = 240.0
ENVIRONMENTS = 2


def _demo_environment() -> tuple[str, dict[str, str]]:
    """This run's environment prefix and the settings it adds for its worker and reader
    (the caller's environment is left as it is). Each run simulates fresh environments
    (decisions are final, so a run must not inherit another's), each with a token of
    its own; G is 10 s unless the caller set it."""
    prefix = f"demo-{uuid.uuid4().hex[:6]}"
    extra = {"STREAM_APP_API_TOKENS": ",".join(
        f"token-{prefix}-{i}={prefix}-{i}" for i in range(1, ENVIRONMENTS + 1))}
    if "STREAM_APP_MATCH_GRACE_SECONDS" not in os.environ:
        extra["STREAM_APP_MATCH_GRACE_SECONDS"] = "10"
    return prefix, extra


def run_demo(callbacks: int, seed: int) -> int:
    """Return 0 when the HTTP stats of every environment match the simulator's truth."""
    console = Console()
    console.rule("1. Kafka and Redis")
    prefix, extra = _demo_environment()
    settings = load_settings(**{k.removeprefix("STREAM_APP_").lower(): v
                                for k, v in extra.items()})
    # Its own ports first: finding one busy after the traffic was produced wasted it.
    refuse_busy(settings.worker_web_bind, settings.worker_web_port,
                "STREAM_APP_WORKER_WEB_PORT")
    refuse_busy(settings.reader_bind, settings.reader_port, "STREAM_APP_READER_PORT")
    layout = services.Layout.default(*services.local_ports(settings.kafka_bootstrap,
                                                           settings.redis_url))
    for name, state in services.up(layout).items():
        console.print(f"{name}: {state}")
    logs = layout.state_dir  # beside the services' own logs, never in the caller's directory
    logs.mkdir(parents=True, exist_ok=True)
    console.rule("2. worker and reader")
    worker = StreamAppProcess(["worker", "--loglevel", "WARNING"], logs / "demo-worker.log",
                              extra)
    reader = StreamAppProcess(["reader"], logs / "demo-reader.log", extra)
    console.print(f"worker pid {worker.pid} (log {logs / 'demo-worker.log'}), "
                  f"reader pid {reader.pid} on port {settings.reader_port}")
    try:
        console.rule("3. a simulated day of traffic")
        day = datetime.now(settings.zone).date()
        scenario = Scenario(seed=seed, day=day, timezone=settings.timezone,
                            environments=ENVIRONMENTS, environment_prefix=prefix,
                            callbacks=callbacks, window_seconds=settings.recency_window_seconds)
        truth = produce_scenario(settings, scenario, rate=3000.0)
        console.rule("4. stats from the HTTP reader, once every callback is decided")
        return asyncio.run(_compare(settings, truth, day.isoformat(), console))
    except ChildDied as exc:
        console.print(f"[bold red]{exc}[/]")
        return 1
    finally:
        for process in (worker, reader):
            process.process.terminate()
        for process in (worker, reader):
            process.stop()
        console.print("worker and reader stopped; Kafka and Redis keep running "
                      "(`stream-app services down` stops them)")


async def _compare(settings: Settings, truth: dict[str, Any], day: str, console: Console) -> int:
    tokens = {env: token for token, env in settings.tokens.items()}
    failures = 0
    async with aiohttp.ClientSession() as http:
        for env, by_day in truth.items():
            expected = by_day[day]
            body = await _settled(http, settings, tokens[env], expected)
            console.print(f"GET {STATS_PATH} as {env}:")
            console.print_json(orjson.dumps(body).decode())
            if body.get("success"):
                print_stats(env, StatsResponse.model_validate(body), console)
            got = {k: v for k, v in (body.get("data") or {}).items() if k != "period"}
            if got == expected:
                console.print(f"[bold green]{env}: matches truth[/]")
            else:
                failures += 1
                diff = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
                console.print(f"[bold red]{env}: differs from truth (got, expected): {diff}[/]")
    return 1 if failures else 0


async def _settled(http: aiohttp.ClientSession, settings: Settings, token: str,
                   expected: dict[str, Any]) -> dict[str, Any]:
    """The stats body once every callback is decided, or the last one seen at the
    timeout (the caller reports the difference); stops at once if a child died."""
    url = f"http://127.0.0.1:{settings.reader_port}{STATS_PATH}"
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        check_children()
        try:
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                body = await response.json()
        except aiohttp.ClientError:
            await asyncio.sleep(0.5)
            continue
        data = body.get("data") or {}
        decided = data.get("callbacks_unmatched", 0) + sum(
            r["count"] for r in data.get("callbacks_by_source_agent", []))
        if (data.get("total_callbacks_received") == expected["total_callbacks_received"]
                and decided == expected["total_callbacks_received"]):
            return body
        await asyncio.sleep(0.5)
    return body
