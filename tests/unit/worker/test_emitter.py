"""The progress emitter: caught-up, heartbeat, nothing while rebalancing, base vs next."""

from __future__ import annotations

from collections.abc import Mapping

from stream_app.core.domain.progress import InputPartition, IntakeProgress
from stream_app.core.domain.records import Progress, decode_keyed
from stream_app.worker.emitter import HEARTBEAT_SECONDS, ProgressEmitter

A = InputPartition("in", 0)
DISORDER = 5.0


class World:
    """The emitter with a hand-turned clock, the broker's end offsets and the sends."""

    def __init__(self) -> None:
        self.progress = IntakeProgress(DISORDER)
        self.now, self.ticks = 1000.0, 0.0
        self.ends: dict[tuple[str, int], int] = {("in", 0): 10}
        self.bases: dict[InputPartition, int | None] = {A: 0}
        self.busy = False
        self.assigned = [A]
        self.sent: list[dict[InputPartition, float]] = []
        self.flowing = 0
        self.asked_at: list[float] = []
        self.emitter = ProgressEmitter(
            self.progress, assigned=lambda: self.assigned, busy=lambda: self.busy,
            base=self.bases.get, end_offsets=self.end_offsets, send=self.send,
            sent=self.flow, clock=lambda: self.now, tick=lambda: self.ticks)

    async def end_offsets(self, tps: list[tuple[str, int]]) -> Mapping[tuple[str, int], int]:
        self.asked_at.append(self.now)
        self.now += 0.5  # the broker answers later: the clock was read before
        return {tp: self.ends[tp] for tp in tps}

    async def send(self, record: bytes) -> None:
        progress = decode_keyed(record)
        assert isinstance(progress, Progress)
        self.sent.append({InputPartition(t, p): m for t, p, m in progress.marks})

    def flow(self) -> None:
        self.flowing += 1


async def test_behind_its_log_the_mark_is_the_newest_delivered_timestamp_less_disorder(
        ) -> None:
    world = World()
    world.progress.delivered(A, 4, timestamp=500.0)
    await world.emitter()
    assert world.sent == [{A: 500.0 - DISORDER}], "5 of 10 processed: not caught up"


async def test_caught_up_the_mark_follows_the_clock_read_before_the_end_offsets() -> None:
    world = World()
    world.progress.delivered(A, 9, timestamp=500.0)
    await world.emitter()
    assert world.sent == [{A: world.asked_at[0] - DISORDER}]
    assert world.now > world.asked_at[0], "not the clock after the broker's answer"


async def test_the_commit_base_counts_as_processed_after_a_rebalance() -> None:
    world = World()
    world.bases[A] = 10  # resumed from 10: everything below was processed before
    await world.emitter()
    assert world.sent == [{A: world.asked_at[0] - DISORDER}]


async def test_a_stale_next_offset_does_not_hide_a_base_below_the_end() -> None:
    world = World()
    world.progress.delivered(A, 3, timestamp=500.0)
    world.bases[A] = 6
    await world.emitter()
    assert world.sent == [{A: 500.0 - DISORDER}], "base 6 < end 10: not caught up"


async def test_no_base_and_nothing_delivered_sends_nothing() -> None:
    world = World()
    world.bases[A] = None
    await world.emitter()
    assert world.sent == [] and world.flowing == 0


async def test_nothing_is_sent_while_rebalancing_or_without_partitions() -> None:
    world = World()
    world.progress.delivered(A, 9, timestamp=500.0)
    world.busy = True
    await world.emitter()
    world.busy, world.assigned = False, []
    await world.emitter()
    assert world.sent == [] and world.asked_at == [], "the broker is not even asked"


async def test_unchanged_marks_are_sent_again_only_at_the_heartbeat() -> None:
    world = World()
    world.progress.delivered(A, 4, timestamp=500.0)
    await world.emitter()
    world.ticks += HEARTBEAT_SECONDS / 2
    await world.emitter()
    assert len(world.sent) == 1 and world.flowing == 2, "unchanged: still counts as flowing"
    world.ticks += HEARTBEAT_SECONDS
    await world.emitter()
    assert len(world.sent) == 2, "the heartbeat re-sends them"
    world.progress.delivered(A, 5, timestamp=510.0)
    await world.emitter()
    assert world.sent[-1] == {A: 510.0 - DISORDER}, "a change is sent at once"
