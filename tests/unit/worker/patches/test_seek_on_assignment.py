"""Patch: seek on assignment. Each test fails without the code it covers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer
from faust.types import TP

from stream_app.worker import patch_registry
from tests.unit.worker.doubles import TP0, consumer_double

patch_registry.install()


# -- 3. seek on assignment ------------------------------------------------------------



def test_partitions_without_a_commit_are_sought_to_their_log_start() -> None:
    """...through the consumer thread: Faust's ``_seek`` runs aiokafka's ``seek`` in the
    caller's thread, racing the fetcher (a KeyError in ``fetched_records`` crashed a
    worker in the benchmark's scale-out)."""
    fresh, zero, known = TP("in", 0), TP("in", 1), TP("in", 2)
    changelog = TP("app-history-changelog", 0)
    consumer = consumer_double()
    sought: dict[TP, int] = {}

    async def seek_to_committed() -> dict[TP, int | None]:
        return {fresh: None, zero: 0, known: 57, changelog: None}

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return {tp: 5 if tp == fresh else 0 for tp in tps}

    async def seek_wait(offsets: dict[TP, int]) -> None:
        sought.update(offsets)

    async def seek_from_this_thread(tp: TP, offset: int) -> None:
        raise AssertionError("aiokafka's seek called outside the consumer thread")

    consumer.seek_to_committed = seek_to_committed
    consumer.earliest_offsets = earliest_offsets
    consumer._thread = SimpleNamespace(seek_wait=seek_wait)
    consumer._seek = seek_from_this_thread  # Faust's: the caller's thread
    asyncio.run(Consumer.perform_seek(consumer))
    assert sought == {fresh: 5, zero: 0}
    assert dict(consumer._committed_offset) == {fresh: 5, zero: 0, known: 57}


class SlowBroker:
    """A consumer's view of the broker for seeks: ``seek_to_committed`` reads the
    committed offset and seeks to it, like aiokafka's, then waits for its call's answer
    (the reply crossing back from the consumer thread) before returning."""

    def __init__(self, committed: int) -> None:
        self.committed = committed
        self.position: int | None = None
        self.answers = [asyncio.Event(), asyncio.Event()]
        self.inside = asyncio.Event()
        self.calls = 0

    def consumer(self) -> Any:
        consumer = consumer_double()

        async def seek_to_committed() -> dict[TP, int]:
            answer = self.answers[self.calls]
            self.calls += 1
            offset = self.position = self.committed
            self.inside.set()
            await answer.wait()
            return {TP0: offset}

        consumer.seek_to_committed = seek_to_committed
        return consumer


def test_concurrent_seeks_leave_position_and_base_from_the_same_call() -> None:
    """The fetch loop's seek and the recovery's interleaved: the partition ended at the
    newer committed offset with the older one as its base, never committed again, and
    (idle) never counted as caught up — the watermarks stalled."""
    async def run() -> None:
        broker = SlowBroker(committed=40)
        consumer = broker.consumer()
        first = asyncio.ensure_future(Consumer.perform_seek(consumer))  # the fetch loop
        await broker.inside.wait()
        broker.committed = 60  # the group commits meanwhile
        second = asyncio.ensure_future(Consumer.perform_seek(consumer))  # the recovery
        for _ in range(5):
            await asyncio.sleep(0)
        broker.answers[1].set()  # the newer call's reply comes back first
        for _ in range(5):
            await asyncio.sleep(0)
        broker.answers[0].set()
        await asyncio.gather(first, second)
        assert broker.position == consumer._committed_offset[TP0] == 60

    asyncio.run(run())


def test_a_cancelled_seek_still_records_its_base() -> None:
    async def run() -> None:
        broker = SlowBroker(committed=40)
        consumer = broker.consumer()
        seeking = asyncio.ensure_future(Consumer.perform_seek(consumer))
        await broker.inside.wait()
        seeking.cancel()
        broker.answers[0].set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert broker.position == consumer._committed_offset[TP0] == 40

    asyncio.run(run())
