"""`stream-app stats` and `stream-app simulate` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from stream_app.dev.simulate import Scenario, generate
from tests.conftest import Endpoints
from tests.integration.http import DAY, get, http_client
from tests.support import REPO, WorkerProcess

pytestmark = pytest.mark.integration


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stream_app", *args], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


async def test_stats_prints_the_http_body(traffic, endpoints: Endpoints) -> None:
    env = {"STREAM_APP_REDIS_URL": endpoints.redis_url}
    result = run("stats", "--environment", traffic["a"], "--start", DAY, "--end", DAY, "--json",
                 env=env)
    assert result.returncode == 0, result.stderr
    client = await http_client(endpoints, f"t={traffic['a']}")
    try:
        _, body = await get(client, "t", start_date=DAY, end_date=DAY)
    finally:
        await client.close()
    assert orjson.loads(result.stdout) == body

    table = run("stats", "--environment", traffic["a"], "--start", DAY, "--end", DAY, env=env)
    assert "total callbacks received" in table.stdout and "Sales Outbound" in table.stdout
    bad = run("stats", "--environment", "x", "--start", "2024-13-01", env=env)
    assert bad.returncode != 0 and "INVALID_DATE" in bad.stderr


def test_simulate_writes_its_truth(worker: WorkerProcess, tmp_path: Path) -> None:
    s, truth_file = worker.settings, tmp_path / "truth.json"
    env = dict(worker.env)
    result = run("simulate", "--seed", "9", "--callbacks", "40", "--day", "2024-02-02",
                 "--rate", "0", "--truth", str(truth_file), env=env)
    assert result.returncode == 0, result.stderr
    assert "produced" in result.stdout
    truth = orjson.loads(truth_file.read_bytes())
    scenario = Scenario(seed=9, callbacks=40, contacts=500, day=date(2024, 2, 2),
                        window_seconds=s.recency_window_seconds)
    expected = generate(scenario).truth(s.recency_window_seconds, ZoneInfo("UTC"))
    assert truth == expected
    assert sum(d["total_callbacks_received"] for e in truth.values() for d in e.values()) == 40


async def test_the_installed_worker_runs_from_any_directory(endpoints: Endpoints,
                                                            tmp_path: Path) -> None:
    """The console script, started in an empty directory with only documented settings,
    creates its state directory (with parents) under the user's home and serves /healthz."""
    import aiohttp

    from tests.support import free_port, poll, worker_env

    script = Path(sys.executable).with_name("stream-app")
    cwd, home = tmp_path / "empty", tmp_path / "home"
    cwd.mkdir()
    env = worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path)
    del env["STREAM_APP_DATA_DIR"]
    port = free_port()
    env["STREAM_APP_WORKER_WEB_PORT"] = str(port)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("STREAM_APP_", "XDG_"))}
    process = subprocess.Popen([str(script), "worker"], cwd=cwd,
                               env={**clean, **env, "HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    async def health() -> int:
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(f"http://127.0.0.1:{port}/healthz") as response:
                return response.status
        except aiohttp.ClientError:
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            return 0

    try:
        await poll(health, lambda status: status == 200, timeout=90, interval=0.5,
                   what="the worker's /healthz")
        assert (home / ".local/state/stream-app/worker-data").is_dir()
        assert list(cwd.iterdir()) == [], "the worker wrote into its working directory"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(("args", "settings", "says"), [
    (("worker",), "busy worker port", "STREAM_APP_WORKER_WEB_PORT"),
    (("reader",), "busy reader port", "STREAM_APP_READER_PORT"),
    (("reader",), "no tokens", "STREAM_APP_API_TOKENS is empty"),
    (("stats", "--environment", "e"), "redis down", "STREAM_APP_REDIS_URL"),
    (("explain", "c1", "--environment", "e"), "redis down", "STREAM_APP_REDIS_URL"),
    (("stats", "--environment", "no-such-env"), "", "no counters were ever written"),
    (("worker", "--loglevel", "loud"), "", "'loud' is not one of"),
    (("simulate", "--callbacks", "-5"), "", "-5 is not a positive count"),
    (("tail", "callback-stats"), "kafka down", "STREAM_APP_KAFKA_BOOTSTRAP"),
    (("audit",), "kafka down", "STREAM_APP_KAFKA_BOOTSTRAP"),
    (("reader",), "unknown exporter", "OTEL_TRACES_EXPORTER='zipkin'"),
    (("settings",), "bad log format", "STREAM_APP_LOG_FORMAT"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_an_expected_failure_is_one_line_and_an_exit_code(
        args: tuple[str, ...], settings: str, says: str, endpoints: Endpoints) -> None:
    import socket

    from tests.support import free_port

    env = {"STREAM_APP_REDIS_URL": endpoints.redis_url,
           "STREAM_APP_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = str(holder.getsockname()[1])
        if settings == "busy worker port":
            env["STREAM_APP_WORKER_WEB_PORT"] = busy
        elif settings == "busy reader port":
            env |= {"STREAM_APP_READER_PORT": busy, "STREAM_APP_API_TOKENS": "t=e"}
        elif settings == "no tokens":
            env["STREAM_APP_API_TOKENS"] = ""
        elif settings == "redis down":
            env["STREAM_APP_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        elif settings == "kafka down":
            env["STREAM_APP_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{free_port()}"
        elif settings == "unknown exporter":
            env |= {"OTEL_TRACES_EXPORTER": "zipkin", "STREAM_APP_API_TOKENS": "t=e",
                    "STREAM_APP_READER_PORT": str(free_port())}
        elif settings == "bad log format":
            env["STREAM_APP_LOG_FORMAT"] = "xml"
        result = run(*args, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and says in lines[0], result.stderr
