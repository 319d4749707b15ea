"""The demo and the bench stop at once, with the tail of its log, when a child dies."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream_app.dev.processes import ChildDied, StreamAppProcess, check_children


def test_a_child_that_exited_is_reported_with_its_log(tmp_path: Path) -> None:
    child = StreamAppProcess(["no-such-command"], tmp_path / "child.log")
    deadline = time.monotonic() + 30
    while child.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(ChildDied) as info:
        check_children()
    assert "exited with code 2" in str(info.value)
    assert "invalid choice: 'no-such-command'" in str(info.value), "the log's tail"
    child.stop()
    check_children()  # stopped on purpose: no longer watched
