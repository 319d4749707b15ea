"""An agent processes each partition in offset order, every offset once (Admission)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from stream_app.core.order import GAP_REFETCH_SECONDS
from stream_app.worker.agents import Admission

A, B = TP("in", 0), TP("in", 1)


def events(tp: TP, *offsets: int, generation: int | None = 1) -> list[Any]:
    return [SimpleNamespace(message=SimpleNamespace(tp=tp, topic=tp.topic,
                                                    partition=tp.partition, offset=o,
                                                    generation_id=generation))
            for o in offsets]


class World:
    """Commit bases, the consumer generation, a clock, and the re-fetches asked for."""

    def __init__(self) -> None:
        self.generation = 1
        self.bases: dict[TP, int | None] = {A: 10, B: 0}
        self.now = 0.0
        self.refetches: list[tuple[TP, int, int | None]] = []
        self.admission = Admission(lambda: self.generation, self.bases.get,
                                   lambda tp, o, g: self.refetches.append((tp, o, g)),
                                   clock=lambda: self.now)

    def admit(self, batch: list[Any]) -> tuple[list[int], list[int]]:
        """Offsets to process, offsets to ack."""
        messages, done = self.admission(batch)
        return [m.offset for m in messages], [e.message.offset for e in done]


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


async def test_the_health_probe_feeds_health_and_logs_one_task_dump_per_stall(
        caplog: pytest.LogCaptureFixture) -> None:
    from stream_app.observe.health import Health
    from stream_app.observe.looplag import LoopLag
    from stream_app.worker.agents import HealthProbe

    tp = TP("in", 0)
    app = SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: {tp}, _thread=None,
                                                   _committed_offset={tp: 5}))

    async def ends(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {("in", 0): 10}

    async def ping() -> bool:
        return True

    clock = [100.0]
    health = Health(stall_after=30.0, clock=lambda: clock[0])
    store = SimpleNamespace(redis=SimpleNamespace(ping=ping))
    lag = LoopLag()
    probe = HealthProbe(app, health, store, ends, lag)  # type: ignore[arg-type]
    try:
        await probe()
        assert health.waiting and health.redis_at == 100.0 and health.live()[0]
        for _ in range(3):
            clock[0] += 20
            await probe()
    finally:
        assert lag._task is not None
        lag._task.cancel()
    assert not health.live()[0]
    dumps = [r for r in caplog.records if r.getMessage().startswith("stalled for")]
    assert len(dumps) == 1 and "== loop main" in dumps[0].getMessage()
