"""An agent processes each partition in offset order, every offset once; a gap is skipped
only when the broker says it holds no records."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from stream_app.core.domain.order import GAP_REFETCH_SECONDS, GAP_REFETCHES, AbsentOffsets
from stream_app.worker.admission import Admission

A, B = TP("in", 0), TP("in", 1)


def events(tp: TP, *offsets: int, generation: int | None = 1) -> list[Any]:
    return [SimpleNamespace(tp=tp, topic=tp.topic, partition=tp.partition, offset=o,
                            generation_id=generation)
            for o in offsets]


class World:
    """Commit bases, the consumer generation, a clock, and the re-fetches asked for."""

    def __init__(self) -> None:
        self.generation = 1
        self.bases: dict[TP, int | None] = {A: 10, B: 0}
        self.now = 0.0
        self.refetches: list[tuple[TP, int, int | None]] = []
        self.asked: list[tuple[TP, int, int]] = []
        self.broker_holds: bool | None = False
        self.absent = AbsentOffsets()
        self.admission = Admission(lambda: self.generation, self.bases.get,
                                   lambda tp, o, g: self.refetches.append((tp, o, g)),
                                   self.ask, self.absent, clock=lambda: self.now)

    async def ask(self, tp: TP, start: int, stop: int) -> bool | None:
        self.asked.append((tp, start, stop))
        return self.broker_holds

    def admit(self, batch: list[Any]) -> tuple[list[int], list[int]]:
        """Offsets to process, offsets to ack."""
        messages, done = self.admission(batch)
        return [m.offset for m in messages], [m.offset for m in done]


def test_messages_past_a_hole_wait_and_the_hole_is_fetched_again_if_it_stays() -> None:
    world = World()
    assert world.admit(events(A, 10, 11, 14, 15)) == ([10, 11], [10, 11])
    assert world.refetches == [], "a gap may close by itself"
    world.now += GAP_REFETCH_SECONDS
    assert world.admit(events(A, 16)) == ([], [])
    assert world.refetches == [(A, 12, 1)], "from the first missing offset"
    assert world.admit(events(A, 12, 13, 14, 15, 16)) == ([12, 13, 14, 15, 16],) * 2


def test_offsets_fetched_again_are_acked_not_processed_and_partitions_are_apart() -> None:
    world = World()
    world.admit(events(A, 10, 11) + events(B, 0))
    batch = events(A, 10, 11, 12) + events(B, 0, 1)
    assert world.admit(batch) == ([12, 1], [10, 11, 12, 0, 1])


def test_a_new_generation_starts_at_the_base_and_old_messages_are_dropped() -> None:
    world = World()
    world.admit(events(A, 10, 11, 12))
    world.generation, world.bases[A] = 2, 11
    assert world.admit(events(A, 13, generation=1)) == ([], []), "fetched before the rebalance"
    assert world.admit(events(A, 11, 12, generation=2)) == ([11, 12], [11, 12])


def test_no_base_yet_nothing_is_processed_and_nothing_fetched() -> None:
    world = World()
    world.bases[A] = None
    for _ in range(5):
        world.now += GAP_REFETCH_SECONDS
        assert world.admit(events(A, 0, 1)) == ([], [])
    assert world.refetches == [], "the recovery's seek is to come (or the timer's)"


async def until_asked(world: World) -> None:
    """Run ``GAP_REFETCHES`` re-fetches of A's gap at 12, then the question."""
    world.admit(events(A, 10, 11, 14))
    for _ in range(GAP_REFETCHES + 1):
        world.now += GAP_REFETCH_SECONDS
        assert world.admit(events(A, 14)) == ([], [])
    assert len(world.refetches) == GAP_REFETCHES
    await asyncio.gather(*world.admission.asking)
    assert world.asked == [(A, 12, 14)], "the broker is asked about exactly the gap"


async def test_a_gap_the_broker_says_is_empty_is_skipped() -> None:
    world = World()
    world.broker_holds = False
    await until_asked(world)
    world.now += GAP_REFETCH_SECONDS
    assert world.admit(events(A, 14, 15)) == ([14, 15], [14, 15])
    assert world.admission.holding() == []


async def test_a_gap_that_holds_records_is_never_skipped_and_makes_the_worker_not_ready() -> None:
    world = World()
    world.broker_holds = True
    await until_asked(world)
    assert world.admission.holding() == [A]
    for _ in range(4 * GAP_REFETCHES):
        world.now += GAP_REFETCH_SECONDS
        assert world.admit(events(A, 14, 15)) == ([], []), "never past a record that exists"
        await asyncio.gather(*world.admission.asking)
    assert len(world.refetches) > 2 * GAP_REFETCHES, "it keeps fetching again"
    assert len(world.asked) > 1, "and asking again"
    assert world.admit(events(A, 12, 13, 14)) == ([12, 13, 14],) * 2
    assert world.admission.holding() == [], "the records arrived: the gap is closed"


async def test_no_answer_from_the_broker_asks_again_later() -> None:
    world = World()
    world.broker_holds = None
    await until_asked(world)
    world.broker_holds = False
    world.now += GAP_REFETCH_SECONDS
    assert world.admit(events(A, 14)) == ([], []), "not skipped on no answer"
    await asyncio.gather(*world.admission.asking)
    assert len(world.asked) == 2
    world.now += GAP_REFETCH_SECONDS
    assert world.admit(events(A, 14)) == ([14], [14])


def test_a_gap_the_fetch_read_past_without_a_record_is_passed_at_once() -> None:
    """Transaction markers and aborted records: no wait, no re-fetch, no question."""
    world = World()
    world.absent.read(A, 10, 20, [10, 11, 13, 16, 17])  # 12, 14-15 absent; 18-19 too
    assert world.admit(events(A, 10, 11, 13, 16, 17)) == ([10, 11, 13, 16, 17],) * 2
    assert world.refetches == [] and world.asked == []
    world.absent.read(A, 20, 25, [22])  # 20-21 absent, but 18-19 too: still a run
    assert world.admit(events(A, 22)) == ([22], [22])


def test_a_gap_with_one_offset_not_known_absent_still_waits() -> None:
    world = World()
    world.absent.read(A, 10, 12, [10])  # 11 absent; 12 was never read
    assert world.admit(events(A, 10, 13)) == ([10], [10])
    world.now += GAP_REFETCH_SECONDS
    assert world.admit(events(A, 13)) == ([], [])
    assert world.refetches == [(A, 12, 1)]
