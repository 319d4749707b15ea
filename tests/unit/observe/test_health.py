"""Liveness and readiness from observations, on a clock the test turns."""

from __future__ import annotations

from stream_app.observe.health import TIMER_FAILURES_NOT_READY, Health
from tests.support import ManualClock


def health(clock: ManualClock, stall_after: float = 60.0) -> Health:
    return Health(stall_after, stale_after=10.0, clock=clock)


def test_input_waiting_with_no_progress_is_a_stall_that_fails_liveness() -> None:
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({"p0": 10}, {"p0": 50})
    clock.now += 61
    h.offsets({"p0": 10}, {"p0": 80})
    assert h.stalled_seconds() == 61
    ok, body = h.live()
    assert not ok and body["status"] == "stalled" and body["input_waiting"]


def test_a_processed_message_or_a_moved_commit_is_progress() -> None:
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({"p0": 10}, {"p0": 50})
    clock.now += 50
    h.processed(3)
    clock.now += 50
    assert h.stalled_seconds() == 50 and h.live()[0]
    h.offsets({"p0": 11}, {"p0": 50})  # the commit moved
    assert h.stalled_seconds() == 0


def test_idle_is_not_a_stall() -> None:
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({"p0": 50}, {"p0": 50})
    clock.now += 1000
    h.offsets({"p0": 50}, {"p0": 50})
    assert h.stalled_seconds() == 0 and h.live()[0]


def test_an_acked_batch_of_nothing_is_not_progress() -> None:
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({"p0": 10}, {"p0": 50})
    clock.now += 100
    h.processed(0)
    assert h.stalled_seconds() == 100


def test_a_stall_survives_kafka_being_away() -> None:
    """No new end offsets: the last known ones still say input waits."""
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({"p0": 10}, {"p0": 50})
    clock.now += 500
    assert h.stalled_seconds() == 500 and not h.live()[0]


def test_a_partition_never_committed_counts_as_offset_zero() -> None:
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({"p0": None}, {"p0": 5})
    assert h.waiting


def test_ready_needs_every_check_and_names_the_failing_ones() -> None:
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({"p0": 5}, {"p0": 5})
    h.redis_answered()
    h.watermarks_sent()
    assert h.ready(assigned=2, rebalancing=False)[0]
    ok, body = h.ready(assigned=0, rebalancing=True)
    assert not ok
    assert not body["checks"]["partitions_assigned"] and not body["checks"]["not_rebalancing"]
    clock.now += 11
    ok, body = h.ready(assigned=2, rebalancing=False)
    assert not ok and not body["checks"]["kafka_reachable"]
    assert not body["checks"]["redis_reachable"] and not body["checks"]["watermarks_flowing"]


def test_a_timer_that_keeps_failing_makes_it_not_ready_until_it_runs_again() -> None:
    clock = ManualClock(1000.0)
    h = health(clock)
    h.offsets({}, {})
    h.redis_answered()
    h.watermarks_sent()
    for _ in range(TIMER_FAILURES_NOT_READY - 1):
        h.timer_ran("send-progress", ok=False)
    assert h.ready(1, False)[0]
    h.timer_ran("send-progress", ok=False)
    ok, body = h.ready(1, False)
    assert not ok and body["failing_timers"] == ["send-progress"]
    h.timer_ran("send-progress", ok=True)
    assert h.ready(1, False)[0]
