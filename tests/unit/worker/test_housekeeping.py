"""The worker's housekeeping timers and how a timer runs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from stream_app.core.domain.progress import InputPartition, Watermarks
from stream_app.observe import metrics
from stream_app.observe.health import TIMER_FAILURES_NOT_READY, Health
from stream_app.worker.housekeeping import Housekeeping, logged


class World:
    def __init__(self) -> None:
        self.busy = False
        self.pruned = 0
        self.changes_sent = 0
        self.repairs = 0
        self.partitions: list[tuple[str, int]] = [("in", 0)]
        self.watermarks = Watermarks([InputPartition("in", 0)])
        self.chores = Housekeeping(lambda: self.busy, self.prune, self.send_changes,
                                   self.repair, self.inputs, self.watermarks)

    async def prune(self) -> int:
        self.pruned += 1
        return 3

    async def send_changes(self) -> None:
        self.changes_sent += 1

    def repair(self) -> None:
        self.repairs += 1

    async def inputs(self) -> Sequence[tuple[str, int]]:
        return self.partitions


async def test_pruning_waits_for_a_rebalance_and_sends_its_table_changes() -> None:
    world = World()
    world.busy = True
    await world.chores.prune_idle()
    assert world.pruned == 0
    world.busy = False
    await world.chores.prune_idle()
    assert (world.pruned, world.changes_sent) == (1, 1)


async def test_a_partition_added_to_an_input_topic_joins_the_low_watermark(
        caplog: pytest.LogCaptureFixture) -> None:
    world = World()
    world.watermarks.advance(0, {InputPartition("in", 0): 10.0})
    await world.chores.watch_inputs()
    assert world.watermarks.low(0) == 10.0
    world.partitions.append(("in", 1))
    await world.chores.watch_inputs()
    assert world.watermarks.low(0) is None
    assert "input partitions added: in[1]" in caplog.text


async def test_a_failing_timer_is_counted_and_makes_the_worker_not_ready() -> None:
    health = Health(stall_after=60.0)
    calls = []

    async def broken() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    timer = logged(broken, "broken-timer", health)
    before = metrics.TIMER_FAILURES.labels("broken-timer")._value.get()
    for _ in range(TIMER_FAILURES_NOT_READY):
        await timer()  # never raises
    assert metrics.TIMER_FAILURES.labels("broken-timer")._value.get() == before + 3
    ok, body = health.ready(1, False)
    assert not ok and body["failing_timers"] == ["broken-timer"]
