"""`stream-app services`: a recorded pid gets a signal only while it is still ours."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stream_app.dev import services


def test_down_leaves_alone_a_process_that_reused_a_recorded_pid(tmp_path: Path) -> None:
    layout = services.Layout(tmp_path, tmp_path / "cache")
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        for name in ("kafka", "redis"):
            layout.pid_file(name).write_text(str(stranger.pid))
        result = services.down(layout)
        assert all("nothing of ours" in state for state in result.values()), result
        assert stranger.poll() is None, "an unrelated process was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_the_ports_to_start_are_the_ones_the_settings_name() -> None:
    assert services.local_ports("127.0.0.1:19092", "redis://127.0.0.1:16379/0") == (19092,
                                                                                   16379)
    assert services.local_ports("localhost:9092,other:9092", "redis://h/0") == (9092, 6379)
    assert services.local_ports("kafka", "unix:///tmp/redis.sock") == (9092, 6379)


def test_a_starting_and_a_running_redis_are_both_recognised(tmp_path: Path,
                                                           monkeypatch) -> None:
    """redis-server starts as `redis-server --port P …` and retitles itself
    `redis-server 127.0.0.1:P`: both are ours, another port's is not."""
    layout = services.Layout(tmp_path, tmp_path / "cache", redis_port=16379)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        layout.pid_file("redis").write_text(str(stranger.pid))
        real = Path.read_bytes
        for title, ours in ((b"/usr/bin/redis-server\0--port\x0016379\0--bind\0x\0", True),
                            (b"/usr/bin/redis-server 127.0.0.1:16379\0", True),
                            (b"/usr/bin/redis-server 127.0.0.1:163790\0", False),
                            (b"/usr/bin/redis-server\0--port\x00163790\0", False)):
            monkeypatch.setattr(Path, "read_bytes",
                                lambda self, t=title: t if "cmdline" in str(self)
                                else real(self))
            assert (services.live_pid(layout, "redis") == stranger.pid) is ours, title
    finally:
        stranger.kill()
        stranger.wait()


def test_services_on_other_ports_keep_pid_and_log_files_of_their_own(tmp_path: Path) -> None:
    first = services.Layout(tmp_path, tmp_path, kafka_port=9092, redis_port=6379)
    other = services.Layout(tmp_path, tmp_path, kafka_port=19092, redis_port=16379)
    for name in ("kafka", "redis"):
        assert first.pid_file(name) != other.pid_file(name)
        assert first.log_file(name) != other.log_file(name)
    assert first.pid_file("kafka").name == "kafka-9092.pid"


def test_in_a_checkout_the_services_live_beside_the_code(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv("STREAM_APP_SERVICES_DIR", raising=False)
    assert services.Layout.default().state_dir == (services.REPO_ROOT / ".services").resolve()
    assert (services.REPO_ROOT / "pyproject.toml").is_file()
