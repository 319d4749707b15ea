"""The built wheel, installed into a fresh venv (not editable), run as a user would:
from an empty directory, with a fresh HOME, only documented settings, on free ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_app.dev import services
from tests.support import free_port
from tests.topology import free_run

pytestmark = pytest.mark.integration


def sh(*command: str, cwd: Path, env: dict[str, str] | None = None,
       timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


def test_the_installed_wheel_starts_services_runs_the_demo_and_stops(
        tmp_path: Path, built_wheel: Path) -> None:
    venv, empty, home = (tmp_path / n for n in ("venv", "empty", "home"))
    empty.mkdir()
    wheel = built_wheel
    sh(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    sh(str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check", str(wheel),
       cwd=tmp_path)
    # Below the ephemeral range: the broker's controller takes the next port too, and one
    # in that range can be taken by an outgoing connection before the broker binds it.
    kafka_port = free_run(2)
    redis_port = free_run(1, avoid=range(kafka_port, kafka_port + 2))
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("STREAM_APP_", "XDG_", "VIRTUAL_ENV", "PYTHON"))}
    # A fresh HOME, so the Kafka jars are copied into a fresh cache; Maven's own download
    # cache is shared (-Dmaven.repo.local), so the test does not download Kafka again.
    maven = Path.home() / ".m2" / "repository"
    env = {**clean, "HOME": str(home), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
           "MAVEN_OPTS": f"-Dmaven.repo.local={maven}",
           "STREAM_APP_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
           "STREAM_APP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "STREAM_APP_READER_PORT": str(free_port()),
           "STREAM_APP_WORKER_WEB_PORT": str(free_port()),
           "STREAM_APP_LOG_FORMAT": "json"}
    app = str(venv / "bin/stream-app")
    assert "stream-app 0." in sh(app, "--version", cwd=empty, env=env).stdout
    timings: dict[str, float] = {}
    began = time.monotonic()
    up = sh(app, "services", "up", "--kafka-port", str(kafka_port), "--redis-port",
            str(redis_port), cwd=empty, env=env)
    timings["services up"] = time.monotonic() - began
    try:
        assert "started Apache Kafka" in up.stdout and f"started on {redis_port}" in up.stdout
        with socket.create_server(("127.0.0.1", int(env["STREAM_APP_WORKER_WEB_PORT"]))):
            busy = subprocess.run([app, "demo", "--callbacks", "60"], cwd=empty, env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
        assert busy.returncode != 0
        assert busy.stderr.count("\n") == 1 and "STREAM_APP_WORKER_WEB_PORT" in busy.stderr
        began = time.monotonic()
        demo = sh(app, "demo", "--callbacks", "60", cwd=empty, env=env, timeout=900)
        timings["demo"] = time.monotonic() - began
        assert demo.stdout.count("matches truth") == 2, demo.stdout[-3000:]
    finally:
        down = sh(app, "services", "down", "--kafka-port", str(kafka_port), "--redis-port",
                  str(redis_port), cwd=empty, env=env)
    assert "stopped" in down.stdout
    assert list(empty.iterdir()) == [], "something was written into the working directory"
    assert not services.port_open(kafka_port) and not services.port_open(redis_port)
    assert (home / ".cache/stream-app").is_dir(), "the Kafka jars in the user's cache"
    for name in ("demo-worker.log", "demo-reader.log"):
        (log,) = home.rglob(name)
        records = [json.loads(line) for line in log.read_text().splitlines()]
        errors = [r for r in records if r["level"] in ("ERROR", "CRITICAL")]
        assert not errors, f"{name}: a healthy run logged {errors[:3]}"
    print("newcomer path: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
