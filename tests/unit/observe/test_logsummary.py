"""Repeated library errors: the first of a kind passes, the rest are counted and
summarised once per interval per service; nothing is dropped uncounted."""

from __future__ import annotations

import logging

import pytest

from stream_app.observe.logsummary import RepeatSummary
from tests.support import ManualClock


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_are_held_back_and_summarised_per_service(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    summary = RepeatSummary(interval=10.0, clock=clock)
    passed = [summary.filter(record("aiokafka.conn", "Unable connect to node with id %s: %s",
                                    1, f"try {i}")) for i in range(2600)]
    assert passed[0] and not any(passed[1:])
    assert summary.filter(record("aiokafka.client", "Unable to update metadata from %s", [1]))
    assert summary.filter(record("redis.asyncio", "Connection refused"))
    assert summary.filter(record("stream_app.core.pipeline.batches", "outage (%s); retrying", "x"))
    assert summary.filter(record("stream_app.core.pipeline.batches", "outage (%s); retrying", "x"))
    caplog.set_level(logging.WARNING)
    clock.now = 10.5
    summary.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("kafka: 2599 repeated log lines held back in the last 10 s")
    assert "Unable connect to node" in lines[0]
    # The summary line itself passes the filter; the next interval starts afresh.
    assert summary.filter(caplog.records[0])
    assert summary.filter(record("aiokafka.conn", "Unable connect to node with id %s: %s",
                                 1, "again"))


def test_info_and_own_lines_always_pass() -> None:
    summary = RepeatSummary(interval=10.0, clock=ManualClock())
    assert all(summary.filter(record("aiokafka.conn", "connected", level=logging.INFO))
               for _ in range(5))
    assert all(summary.filter(record("stream_app.worker.agents", "same")) for _ in range(5))


def test_one_verdict_per_record_however_many_handlers_ask() -> None:
    summary = RepeatSummary(interval=10.0, clock=ManualClock())
    first = record("faust.transport", "Timer %s is overlapping", "x")
    assert summary.filter(first) and summary.filter(first)
    second = record("faust.transport", "Timer %s is overlapping", "y")
    assert not summary.filter(second) and not summary.filter(second)
    assert sum(summary.held["kafka"].values()) == 1
