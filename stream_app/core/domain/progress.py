"""Progress in record time: what each input partition promises, and what a join may decide.

The decision rule needs to know when every record up to a Kafka timestamp has been
read. Each intake tracks, per input partition it consumes, the newest record timestamp
it has *delivered* to the keyed topic, and promises a **watermark**: no record with a
timestamp below it will come from that partition any more. The promise holds when a
partition's timestamps are out of order by at most ``disorder`` seconds (one producer
per partition, or LogAppendTime: zero), the Flink "bounded out-of-orderness" strategy:

    watermark = newest delivered timestamp - disorder
    caught up and idle: watermark = max(watermark, wall clock - disorder)

The intake sends its watermarks *in band*, as progress records to every keyed partition,
after the records they cover were acknowledged, so a join that reads a progress record
has read every record it covers (Kafka keeps a partition's order). Each keyed partition
keeps the highest watermark seen per input partition; its **low watermark** is the
minimum over every input partition, unknown until each has reported. Progress is kept
in memory only: after a restart or a rebalance it is rebuilt from the next progress
records (sent at least every ``PROGRESS_INTERVAL``), and until then nothing is decided.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

PROGRESS_INTERVAL = 0.25
"""Seconds between two progress emissions of one worker (at most)."""


class InputPartition(NamedTuple):
    topic: str
    partition: int


class IntakeProgress:
    """The watermarks this worker's intake may promise, per input partition it consumes."""

    def __init__(self, disorder: float) -> None:
        self.disorder = disorder
        self.newest: dict[InputPartition, float] = {}
        self.next_offset: dict[InputPartition, int] = {}

    def delivered(self, source: InputPartition, offset: int, timestamp: float) -> None:
        """Record that the message at ``offset`` and everything it caused is durable."""
        self.newest[source] = max(self.newest.get(source, timestamp), timestamp)
        self.next_offset[source] = max(self.next_offset.get(source, 0), offset + 1)

    def watermarks(self, assigned: Iterable[InputPartition],
                   caught_up: Callable[[InputPartition], bool], now: float
                   ) -> dict[InputPartition, float]:
        """The watermark of every assigned partition that has one."""
        marks: dict[InputPartition, float] = {}
        for source in assigned:
            newest = self.newest.get(source)
            mark = None if newest is None else newest - self.disorder
            if caught_up(source):
                idle = now - self.disorder
                mark = idle if mark is None else max(mark, idle)
            if mark is not None:
                marks[source] = mark
        return marks


class Watermarks:
    """Per keyed partition: the highest watermark heard from each input partition.

    The input partitions grow when partitions are added to an input topic at run time:
    the worker asks the broker for the counts (:meth:`expect`), and a progress record
    naming a partition of an input topic not known yet adds it too (its intake saw it
    first). From then on the low watermark waits for that partition's progress, so
    nothing is decided before its records are read. Partitions never go away (Kafka
    cannot remove them)."""

    def __init__(self, inputs: Iterable[InputPartition]) -> None:
        self.inputs = frozenset(inputs)
        self.topics = frozenset(s.topic for s in self.inputs)
        self.heard: dict[int, dict[InputPartition, float]] = {}

    def expect(self, inputs: Iterable[InputPartition]) -> set[InputPartition]:
        """Add input partitions of the known topics; return the ones that are new."""
        added = {s for s in inputs if s.topic in self.topics} - self.inputs
        if added:
            self.inputs = self.inputs | added
        return added

    def advance(self, keyed_partition: int, marks: Mapping[InputPartition, float]) -> bool:
        """Take a progress record's watermarks; True if the low watermark may have moved."""
        heard = self.heard.setdefault(keyed_partition, {})
        moved = False
        for source, mark in marks.items():
            if source not in self.inputs:
                if source.topic not in self.topics:
                    continue
                self.expect((source,))
            if mark > heard.get(source, float("-inf")):
                heard[source] = mark
                moved = True
        return moved

    def low(self, keyed_partition: int) -> float | None:
        """Every record with a timestamp below this has been read; None: not known yet."""
        heard = self.heard.get(keyed_partition, {})
        if len(heard) < len(self.inputs):
            return None
        return min(heard[source] for source in self.inputs)
