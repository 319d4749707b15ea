"""Partitions standing still behind their log are fetched again.

Each test fails without the code it covers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from stream_app.worker import holes, patch_registry
from stream_app.worker.patches import seeks
from tests.unit.worker.doubles import TP0, consumer_double

patch_registry.install()


class HoleClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hole_double(base: int | None, acked: list[int], end: int = 200
                ) -> tuple[Any, list[dict[TP, int]]]:
    consumer = consumer_double({TP0: base} if base is not None else {})
    consumer._acked[TP0] = list(acked)
    consumer._acked_index[TP0] = set(acked)
    consumer.app.rebalancing = False
    sought: list[dict[TP, int]] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.append(dict(partitions))

    consumer._thread = SimpleNamespace(seek_wait=seek_wait)
    consumer.assignment = lambda: {TP0, TP("app-history-changelog", 0)}
    consumer.highwater = lambda tp: end
    return consumer, sought


async def check_holes(consumer: Any, clock: HoleClock, seconds: float) -> None:
    clock.now += seconds
    holes.repair_holes(consumer)
    for _ in range(10):  # the re-fetch task runs to its end (its seek is a task too)
        await asyncio.sleep(0)


def test_a_hole_at_the_head_is_fetched_again_from_the_base(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Offsets 100..109 never reached an agent (acks start at 110): without the repair
    the commit stays at 100 for good and the messages in the hole are never processed."""
    clock = HoleClock()
    monkeypatch.setattr(holes, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(100, list(range(110, 120)))
        assert Consumer._new_offset(consumer, TP0) is None
        await check_holes(consumer, clock, 0)
        await check_holes(consumer, clock, holes.HOLE_GRACE_SECONDS - 1)
        assert sought == [], "a hole younger than the grace period may still close"
        await check_holes(consumer, clock, 2)
        assert sought == [{TP0: 100}]
        await check_holes(consumer, clock, 1)
        assert sought == [{TP0: 100}], "one re-fetch per grace period"

    asyncio.run(run())


def test_a_hole_at_the_tail_is_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing acked, the log ends at 200, the base stays at 150: the tail never came."""
    clock = HoleClock()
    monkeypatch.setattr(holes, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(150, [], end=200)
        await check_holes(consumer, clock, 0)
        await check_holes(consumer, clock, holes.HOLE_GRACE_SECONDS + 1)
        assert sought == [{TP0: 150}]

        caught_up, idle = hole_double(200, [], end=200)
        await check_holes(caught_up, clock, 0)
        await check_holes(caught_up, clock, 60)
        assert idle == []

    asyncio.run(run())


def test_a_partition_without_a_base_is_sought_as_a_recovery_would(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recovery's seek never ran (no base): no commit, and the input never counts as
    caught up, so the join decides nothing."""
    clock = HoleClock()
    monkeypatch.setattr(holes, "_now", clock)

    async def run() -> None:
        consumer, _ = hole_double(None, [])

        async def seek_to_committed() -> dict[TP, int]:
            return {TP0: 100}

        consumer.seek_to_committed = seek_to_committed
        await check_holes(consumer, clock, 0)
        await check_holes(consumer, clock, holes.HOLE_GRACE_SECONDS + 1)
        assert consumer._committed_offset[TP0] == 100

    asyncio.run(run())


def test_no_refetch_for_a_closing_hole_a_new_generation_or_a_moving_base(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = HoleClock()
    monkeypatch.setattr(holes, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(100, [101, 102])
        await check_holes(consumer, clock, 0)
        consumer.app.consumer_generation_id = 2  # a rebalance: its recovery seeks
        await check_holes(consumer, clock, 60)
        consumer._committed_offset[TP0] = 103  # committed meanwhile
        consumer._acked[TP0] = [103, 104]
        await check_holes(consumer, clock, 60)
        await check_holes(consumer, clock, 60)
        assert sought == []

    asyncio.run(run())


def test_a_gap_in_the_log_is_left_after_a_few_refetches(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    clock = HoleClock()
    monkeypatch.setattr(holes, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(100, [105])
        for _ in range(20):
            await check_holes(consumer, clock, 30)
        assert len(sought) == holes.HOLE_REPAIRS

    asyncio.run(run())
    assert sum("after 3 re-fetches" in r.getMessage() for r in caplog.records) == 1


def test_a_refetch_stuck_on_the_consumer_thread_gives_the_seek_lock_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A seek that never returns (the broker went away under it) must not hold the seek
    lock: the recovery's seek after the next rebalance needs it."""
    monkeypatch.setattr(holes, "REFETCH_TIMEOUT_SECONDS", 0.05)

    async def run() -> None:
        consumer, _ = hole_double(100, [])

        async def never(partitions: dict[TP, int]) -> None:
            await asyncio.Event().wait()

        consumer._thread = SimpleNamespace(seek_wait=never)
        await asyncio.wait_for(holes.refetch(consumer, TP0, 100, 1), 2.0)
        assert not seeks.seek_lock(consumer).locked()

    asyncio.run(run())


def test_one_refetch_per_partition_at_a_time() -> None:
    """Every partition stands still during an outage; re-fetches of one partition must
    not queue up behind each other."""
    async def run() -> None:
        consumer, sought = hole_double(100, [])
        release = asyncio.Event()

        async def slow(partitions: dict[TP, int]) -> None:
            sought.append(dict(partitions))
            await release.wait()

        consumer._thread = SimpleNamespace(seek_wait=slow)
        for _ in range(5):
            holes.schedule_refetch(consumer, TP0, 100, 1)
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.sleep(0.01)
        assert sought == [{TP0: 100}]
        holes.schedule_refetch(consumer, TP0, 100, 1)
        await asyncio.sleep(0.01)
        assert len(sought) == 2, "a new one once the first is done"

    asyncio.run(run())
