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

from stream_app.simulate import Scenario, generate
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
