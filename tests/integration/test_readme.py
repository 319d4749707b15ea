"""The README's manual path, run as written: each line of its code block, in order, in a
shell from the checkout. The long-running ones (the worker, the reader) run in the
background. The query is polled until every callback is decided.

The test gives the commands settings of its own, not other command text: fresh topics
and consumer group, a Redis database of its own (flushed first), free ports for the
worker and the reader (the query's URL names the reader's), and G of 5 s instead of 30 s
to keep the suite short. `make install` runs too (a no-op once `make test` built the
venv). `services down` is the one line not run, since it would stop the services the
rest of the session uses; its own test is `test_wheel.py`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis

from tests.conftest import Endpoints
from tests.support import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BACKGROUND = ("stream-app worker", "stream-app reader")


def manual_path() -> list[str]:
    """The commands of the README's "The manual path" block, continuation lines joined,
    comments dropped."""
    text = (REPO / "README.md").read_text()
    section = text.split("## The manual path", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()
            if line.strip()]


def test_the_readme_manual_path_runs_as_written(endpoints: Endpoints, tmp_path: Path) -> None:
    if endpoints.redis_cluster or not endpoints.redis_url.startswith("redis://"):
        pytest.skip("the manual path names one Redis server")
    commands = manual_path()
    assert commands[-1].endswith("stream-app services down")
    name = f"manual-{uuid.uuid4().hex[:8]}"
    reader_port = free_port()
    database = 1 + int(uuid.uuid4().int % 15)
    redis_url = re.sub(r"/\d*$", "", endpoints.redis_url.rstrip("/")) + f"/{database}"
    redis.Redis.from_url(redis_url).flushdb()
    truth = Path(re.findall(r"--truth (\S+)", " ".join(commands))[0])
    env = {**os.environ, "STREAM_APP_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
           "STREAM_APP_REDIS_URL": redis_url, "STREAM_APP_APP_ID": name,
           "STREAM_APP_DATA_DIR": str(tmp_path / "data"),
           "STREAM_APP_WORKER_WEB_PORT": str(free_port()),
           "STREAM_APP_READER_PORT": str(reader_port),
           "STREAM_APP_MATCH_GRACE_SECONDS": "5",
           **{f"STREAM_APP_TOPIC_{t.upper()}": f"{name}-{t}"
              for t in ("outbound", "inbound", "config", "outcomes", "dlq", "stats")}}
    background: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands[:-1]:
            command = command.replace("127.0.0.1:8080", f"127.0.0.1:{reader_port}")
            if any(b in command for b in BACKGROUND):
                log = (tmp_path / f"{len(background)}.log").open("wb")
                background.append(subprocess.Popen(["bash", "-c", command], cwd=REPO,
                                                   env=env, stdout=log, stderr=log))
                time.sleep(1)  # let it bind its port before the next line
            elif command.startswith("curl"):
                assert_query_settles(command, env, truth)
            else:
                result = subprocess.run(["bash", "-c", command], cwd=REPO, env=env,
                                        capture_output=True, text=True, timeout=300)
                assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
            for process in background:
                assert process.poll() is None, f"{process.args} exited"
    finally:
        for process in background:
            process.terminate()
        for process in background:
            process.wait(timeout=60)


def assert_query_settles(command: str, env: dict[str, str], truth_file: Path) -> None:
    """The curl line, again and again, until env-1's body equals the simulator's truth
    for today (the only day this run wrote)."""
    deadline = time.monotonic() + 180
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        result = subprocess.run(["bash", "-c", command], env=env, capture_output=True,
                                text=True, timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            body = json.loads(result.stdout)
            truth = json.loads(truth_file.read_text())["env-1"]
            (expected,) = truth.values()
            data = body.get("data") or {}
            if {k: v for k, v in data.items() if k != "period"} == expected:  # type: ignore[union-attr]
                return
        time.sleep(1)
    raise AssertionError(f"the stats never equalled the truth; last body: {body}")
