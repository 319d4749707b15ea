"""What the image relies on, without a Docker engine: the installed wheel, run as an
unprivileged user with the compose file's environment, starts worker and reader, writes
state only under its data directory, and serves both health endpoints of each."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import Endpoints
from tests.support import REPO, free_port

pytestmark = pytest.mark.integration

UNPRIVILEGED = 65534  # nobody; the image's own user is `app` (uid 10001)


@pytest.fixture(scope="module")
def world_readable() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp dirs are the owner's only)."""
    root = Path(tempfile.mkdtemp(prefix="stream-app-container-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def compose_environment(endpoints: Endpoints, data_dir: Path) -> dict[str, str]:
    """The worker's environment in docker-compose.yml, with the hosts, ports, names and
    data directory this machine gives the test (the variables themselves unchanged)."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v))  # ${VAR:-default}
           for k, v in compose["services"]["worker"]["environment"].items()}
    suffix = uuid.uuid4().hex[:8]
    env.update({"STREAM_APP_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
                "STREAM_APP_REDIS_URL": endpoints.redis_url,
                "STREAM_APP_DATA_DIR": str(data_dir),
                "STREAM_APP_READER_PORT": str(free_port()),
                "STREAM_APP_WORKER_WEB_PORT": str(free_port()),
                "STREAM_APP_APP_ID": f"container-{suffix}",
                **{f"STREAM_APP_TOPIC_{t}": f"container-{t.lower()}-{suffix}"
                   for t in ("OUTBOUND", "INBOUND", "CONFIG", "OUTCOMES", "DLQ")}})
    return env


def start(app: Path, command: str, env: dict[str, str], cwd: Path, log: Path) -> Any:
    as_user: dict[str, Any] = ({"user": UNPRIVILEGED, "group": UNPRIVILEGED}
                               if os.geteuid() == 0 else {})
    with log.open("wb") as out:
        return subprocess.Popen([str(app), command], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **as_user)


def wait_ok(url: str, process: Any, log: Path, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except requests.RequestException:
            pass
        assert process.poll() is None, f"{url}: the process died:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{url} never answered 200:\n" \
                                            f"{log.read_text()[-3000:]}"
        time.sleep(0.5)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_the_wheel_runs_unprivileged_with_the_compose_environment(
        endpoints: Endpoints, built_wheel: Path, world_readable: Path) -> None:
    root = world_readable
    venv, home, state, logs = (root / n for n in ("venv", "home", "state", "logs"))
    python = "/usr/bin/python3" if os.geteuid() == 0 and Path("/usr/bin/python3").exists() \
        else sys.executable  # root's own Python may sit where nobody can read it
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check",
                    str(built_wheel)], check=True, timeout=900)
    for directory in (home, state, logs):
        directory.mkdir()
        if os.geteuid() == 0:  # as the image does: the user owns its home and its state
            os.chown(directory, UNPRIVILEGED, UNPRIVILEGED)
    env = {**compose_environment(endpoints, state), "HOME": str(home),
           "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    before = files_under(root)
    app = venv / "bin/stream-app"
    worker = start(app, "worker", env, home, logs / "worker.log")
    reader = start(app, "reader", env, home, logs / "reader.log")
    try:
        web = f"http://127.0.0.1:{env['STREAM_APP_WORKER_WEB_PORT']}"
        http = f"http://127.0.0.1:{env['STREAM_APP_READER_PORT']}"
        assert wait_ok(f"{web}/healthz", worker, logs / "worker.log")["status"] == "ok"
        assert wait_ok(f"{web}/readyz", worker, logs / "worker.log")["status"] == "ready"
        assert wait_ok(f"{http}/healthz", reader, logs / "reader.log")["status"] == "ok"
        assert wait_ok(f"{http}/readyz", reader, logs / "reader.log")["status"] == "ready"
    finally:
        for process in (worker, reader):
            process.terminate()
            process.wait(timeout=60)
    written = {p for p in files_under(root) - before if logs not in p.parents}
    assert written, "the worker wrote no state"
    outside = sorted(str(p) for p in written if state not in p.parents)
    assert outside == [], f"written outside the data directory: {outside[:10]}"
    if os.geteuid() == 0:
        assert {p.stat().st_uid for p in written} == {UNPRIVILEGED}
