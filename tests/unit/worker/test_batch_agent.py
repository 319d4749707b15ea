"""An agent acks a batch only after it was processed; a lost partition leaves it unacked."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from stream_app.core.domain.progress import InputPartition, IntakeProgress
from stream_app.core.pipeline.batches import PartitionLost
from stream_app.observe.health import Health
from stream_app.worker import batch_agent
from stream_app.worker.batch_agent import BatchAgent


class Source:
    def __init__(self, batches: list[list[Any]]) -> None:
        self.batches, self.acked = batches, []  # type: list[list[Any]], list[Any]

    async def take(self, most: int, within: float) -> list[Any]:
        return self.batches.pop(0)

    def ack(self, message: Any) -> None:
        self.acked.append(message)


class Admission:
    forgotten = 0

    def __call__(self, events: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        return list(events), list(events)

    def forget(self) -> None:
        self.forgotten += 1


def message(offset: int) -> Any:
    return SimpleNamespace(topic="in", partition=0, offset=offset, timestamp=float(offset))


def agent(progress: IntakeProgress | None) -> BatchAgent:
    return BatchAgent("a", None, Admission(), None, None, Health(60.0), progress)  # type: ignore[arg-type]


async def test_a_batch_is_acked_after_processing_and_counted_delivered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    processed: list[int] = []

    async def process(producer: Any, step: Any, messages: Sequence[Any], dead: Any) -> None:
        processed.extend(m.offset for m in messages)

    monkeypatch.setattr(batch_agent, "process", process)
    progress = IntakeProgress(0.0)
    source = Source([[message(0), message(1)]])
    await agent(progress).one_batch(source)
    assert processed == [0, 1] and [m.offset for m in source.acked] == [0, 1]
    assert progress.next_offset == {InputPartition("in", 0): 2}


async def test_a_lost_partition_leaves_the_batch_unacked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def process(*args: Any) -> None:
        raise PartitionLost("keyed[0] went to another worker")

    monkeypatch.setattr(batch_agent, "process", process)
    body = agent(None)
    source = Source([[message(0)]])
    await body.one_batch(source)
    assert source.acked == [] and body.admission.forgotten == 1  # type: ignore[attr-defined]
