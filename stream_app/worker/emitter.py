"""Sends this worker's watermarks to every keyed partition: the progress records.

The most correctness-critical glue of the worker: a watermark promises that no record
with an earlier timestamp will come from its input partition (``core/domain/progress.py``), and
the join decides on it. So:

- nothing is sent while a rebalance or a recovery runs (the assignment is in flux);
- a partition counts as **caught up** only when everything below the broker's end
  offset is processed: by this worker (``next_offset``) or before the offset it resumed
  from (the commit base; after a rebalance ``next_offset`` may be stale from an earlier
  ownership, and the base is where this ownership started), or known to hold no record
  (a transaction's commit marker ends every transactional partition: ``absent``);
- the wall clock is read *before* the end offsets are asked for: a record appended after
  the answer carries a timestamp after ``now`` (within the disorder bound), one appended
  before it is below an end offset and must be processed first;
- unchanged watermarks are sent again only every :data:`HEARTBEAT_SECONDS`, so a join
  that restarted hears them soon without a record per tick.

Clock, end offsets, assignment and sending are given to it, so it is tested without
Kafka (``tests/unit/worker/test_emitter.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from stream_app.core.domain.progress import InputPartition, IntakeProgress
from stream_app.core.domain.records import Progress, encode_keyed

HEARTBEAT_SECONDS = 1.0
"""Progress is re-sent at least this often, so a restarted join hears it soon."""

EndOffsets = Callable[[list[tuple[str, int]]], Awaitable[Mapping[tuple[str, int], int]]]


class ProgressEmitter:
    """Called by a timer every ``PROGRESS_INTERVAL``; sends at most one progress record
    per keyed partition per call."""

    def __init__(self, progress: IntakeProgress, *,
                 assigned: Callable[[], Iterable[InputPartition]],
                 busy: Callable[[], bool],
                 base: Callable[[InputPartition], int | None],
                 end_offsets: EndOffsets,
                 send: Callable[[bytes], Awaitable[None]],
                 sent: Callable[[], None],
                 absent: Callable[[InputPartition, int], int] = lambda s, offset: offset,
                 clock: Callable[[], float] = time.time,
                 tick: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self.assigned, self.busy, self.base = assigned, busy, base
        self.end_offsets, self.send, self.sent = end_offsets, send, sent
        self.clock, self.tick = clock, tick
        self.absent = absent
        """The first offset at or after one that may hold a record."""
        self.last: dict[InputPartition, float] | None = None
        self.last_at = float("-inf")

    async def __call__(self) -> None:
        if self.busy():
            return
        assigned = list(self.assigned())
        if not assigned:
            return
        now = self.clock()  # before the end offsets (see the module doc)
        ends = await self.end_offsets([(s.topic, s.partition) for s in assigned])
        marks = self.progress.watermarks(assigned, lambda s: self.caught_up(s, ends), now)
        tick = self.tick()
        if not marks:
            return
        if marks == self.last and tick - self.last_at < HEARTBEAT_SECONDS:
            self.sent()  # unchanged and recently sent: still flowing
            return
        await self.send(encode_keyed(Progress(tuple((s.topic, s.partition, m)
                                                    for s, m in sorted(marks.items())))))
        self.sent()
        self.last, self.last_at = marks, tick

    def caught_up(self, source: InputPartition,
                  ends: Mapping[tuple[str, int], int]) -> bool:
        """Everything below the broker's end offset is processed (see the module doc)."""
        base = self.base(source)
        processed = max(self.progress.next_offset.get(source, -1), -1 if base is None else base)
        processed = self.absent(source, processed)
        end = ends.get((source.topic, source.partition))
        return end is not None and processed >= end
