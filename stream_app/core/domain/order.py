"""Each partition processed in offset order, every offset once: what the rest relies on.

The join reads a keyed partition's progress record as a promise about every record
before it, and the intake's watermark promises every offset below what it delivered
(``progress.py``). Both hold only if each partition is processed in offset order, with
nothing skipped. faust-streaming 0.15 does not guarantee it: after some rebalances it
delivers a partition's later messages while earlier ones, from its commit base on,
never reach the agent (``worker/holes.py``). Processing past such a hole decided
a callback without the outbound call in the hole (the short soak test, once).

So every agent asks :class:`InOrder` about each message before processing it: the
next offset of its partition is processed; an offset below it (fetched again) was
processed already in this consumer generation and is only acked; an offset above it
is a **gap**: not processed, not acked, and, if it does not close by itself, the
partition is fetched again from the first missing offset (:class:`GapRepairs` says
when). A gap still there after :data:`GAP_REFETCHES` re-fetches may be a real one (a
compacted or transactional input has offsets without records), but that is not
assumed: the broker is asked, by a read outside the consumer group, whether it holds
records in the missing range. Only a "no" skips it; a "yes" keeps re-fetching (and the
worker reports itself not ready); no answer asks again later. A record that exists is
never skipped.

Pure: no Faust, Kafka or Redis here; the agents (``worker/admission.py``) and the
consumer glue (``worker/holes.py``) act on the verdicts.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, Literal, TypeVar

Verdict = Literal["next", "again", "gap"]
GapAction = Literal["refetch", "wait", "ask", "skip"]

P = TypeVar("P", bound=Hashable)
"""What names a partition (``TP`` in the worker)."""

GAP_REFETCH_SECONDS = 2.0
"""How long a re-fetch gets to bring the missing offset before the next one."""
GAP_REFETCHES = 3
"""Re-fetches of one missing offset before its gap is taken for a gap in the log."""


class InOrder(Generic[P]):
    """Per partition, the next offset to process in the current consumer generation.

    Invariant: within a generation, the offsets admitted as ``"next"`` for a partition
    are consecutive from where the generation started (its commit base), except across
    gaps skipped on purpose (:meth:`skip_to`).
    """

    def __init__(self, base: Callable[[P], int | None]) -> None:
        self.base = base
        """A partition's commit base: where the generation started reading it (None:
        not known yet, and then nothing of it can be admitted)."""
        self.generation: int | None = None
        self.next: dict[P, int] = {}

    def admit(self, generation: int | None, partition: P, offset: int) -> Verdict:
        """The verdict on a message; ``"next"`` also moves the partition past it."""
        if generation != self.generation:
            self.generation, self.next = generation, {}
        expected = self.expected(partition)
        if expected is not None and offset > expected:
            expected = self._past_commit(partition, expected)
        if expected is None or offset > expected:
            return "gap"
        if offset < expected:
            return "again"
        self.next[partition] = offset + 1
        return "next"

    def _past_commit(self, partition: P, expected: int) -> int:
        """The commit base, if a commit went past ``expected``: it can only have done so
        over offsets known to hold no record (a partition's tail marker), since every
        other offset below it was admitted here first."""
        base = self.base(partition)
        if base is None or base <= expected:
            return expected
        self.next[partition] = base
        return base

    def expected(self, partition: P) -> int | None:
        """The offset ``partition`` waits for."""
        expected = self.next.get(partition)
        return self.base(partition) if expected is None else expected

    def skip_to(self, partition: P, offset: int) -> None:
        """Take the offsets before ``offset`` for a gap in the log."""
        self.next[partition] = offset

    def forget(self) -> None:
        """Start again from the commit bases (a batch was abandoned half done)."""
        self.next = {}


class Gap:
    """A missing offset of one partition and what was done about it."""

    __slots__ = ("answer", "held", "missing", "refetches", "since")

    def __init__(self, missing: int, now: float) -> None:
        self.missing, self.refetches, self.since = missing, 0, now
        self.answer: Literal["asking", "empty"] | None = None
        self.held = False
        """The broker said records exist in the gap, and they have not arrived yet."""


class GapRepairs:
    """When to fetch a partition again for a missing offset, when to ask the broker
    whether the gap holds records, and when to skip it.

    A gap seen first is waited on: right after a seek (a rebalance, a re-fetch), messages
    fetched before it still drain past the new position, and the sought ones follow.
    Only a gap still there :data:`GAP_REFETCH_SECONDS` later is fetched again, up to
    :data:`GAP_REFETCHES` times; then the broker is asked (``"ask"``; the answer comes
    back through :meth:`answered`). A gap the broker says is empty is skipped; one that
    holds records is fetched again, and asked about again after as many re-fetches. With
    no commit base yet (``None``) there is nothing to fetch from: the recovery's seek is
    about to run (and the worker's timer runs it if it never does).
    """

    def __init__(self) -> None:
        self.gaps: dict[Hashable, Gap] = {}

    def on_gap(self, partition: Hashable, missing: int | None, now: float) -> GapAction:
        """What to do about a message past ``missing`` seen at ``now``."""
        if missing is None:
            return "wait"
        gap = self.gaps.get(partition)
        if gap is None or gap.missing != missing:
            self.gaps[partition] = Gap(missing, now)
            return "wait"
        if gap.answer == "empty":
            del self.gaps[partition]
            return "skip"
        if gap.answer == "asking" or now - gap.since < GAP_REFETCH_SECONDS:
            return "wait"
        gap.since = now
        if gap.refetches < GAP_REFETCHES:
            gap.refetches += 1
            return "refetch"
        gap.answer = "asking"
        return "ask"

    def answered(self, partition: Hashable, missing: int, holds: bool | None) -> None:
        """The broker's answer about ``partition``'s gap at ``missing``: it holds records
        (True), it has none (False), or no answer (None: ask again later)."""
        gap = self.gaps.get(partition)
        if gap is None or gap.missing != missing:
            return
        if holds is False:
            gap.answer = "empty"
        else:
            gap.answer = None
            if holds:
                gap.refetches, gap.held = 0, True

    def closed(self, partition: Hashable) -> None:
        """``partition``'s next offset arrived: no gap there any more."""
        self.gaps.pop(partition, None)

    def holding(self) -> list[Hashable]:
        """Partitions with a gap the broker said holds records that never arrived."""
        return [p for p, gap in self.gaps.items() if gap.held]


class AbsentOffsets:
    """Offsets a ``read_committed`` fetch read past without a record, per partition.

    A transactional producer's commit and abort markers take an offset each, an aborted
    transaction's records are never handed to a ``read_committed`` reader, and
    compaction removes records but keeps the offsets of the rest: such offsets are
    *absent*, and no re-fetch will ever bring them. The fetch itself says which they
    are: it read ``[start, stop)`` of the log (``stop``: the fetcher's next fetch offset,
    past markers and aborted batches) and yielded records at some of those offsets; the
    others are absent. That is a fact about the log, not a guess, so a gap made only of
    absent offsets is passed at once (:class:`InOrder` via the admission), a commit
    follows the processed offsets over them, and a partition whose log ends in a marker
    counts as caught up.

    Invariant: per partition, ranges are sorted, disjoint and never adjacent (merged),
    and hold only offsets some fetch read past without a record. Written by the
    consumer's thread, read by the agents': every method holds one lock.
    """

    MAX_RANGES = 4096
    """Ranges kept per partition; the lowest go first (forgetting one only costs the
    slow path: a gap waited on, fetched again, asked about)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ranges: dict[Hashable, list[tuple[int, int]]] = {}
        self.watched: frozenset[str] | None = None
        """Topics recorded (None: every topic). The worker watches its input and keyed
        topics only: a table's compacted changelog would fill this for nothing."""

    def watch(self, topics: Iterable[str]) -> None:
        self.watched = frozenset(topics)

    def read(self, partition: tuple[str, int], start: int, stop: int,
             offsets: Iterable[int]) -> None:
        """A fetch read ``[start, stop)`` of ``partition`` and yielded a record at each of
        ``offsets`` (ascending, within the range); every other offset there is absent."""
        if stop <= start or (self.watched is not None and partition[0] not in self.watched):
            return
        found: list[tuple[int, int]] = []
        expected = start
        for offset in offsets:
            if offset > expected:
                found.append((expected, offset))
            expected = max(expected, offset + 1)
        if stop > expected:
            found.append((expected, stop))
        if found:
            with self._lock:
                ranges = self._ranges.setdefault(tuple(partition), [])
                for span in found:
                    _merge(ranges, span)
                if len(ranges) > self.MAX_RANGES:
                    del ranges[:len(ranges) - self.MAX_RANGES]

    def run_end(self, partition: tuple[str, int], offset: int) -> int:
        """The first offset at or after ``offset`` that is not known to be absent."""
        with self._lock:
            ranges = self._ranges.get(tuple(partition))
            if not ranges:
                return offset
            i = bisect.bisect_right(ranges, (offset, _INF)) - 1
            if i >= 0 and ranges[i][0] <= offset < ranges[i][1]:
                return ranges[i][1]
            return offset

    def covers(self, partition: tuple[str, int], start: int, stop: int) -> bool:
        """Every offset of ``[start, stop)`` is known to be absent."""
        return self.run_end(partition, start) >= stop

    def forget_below(self, partition: tuple[str, int], offset: int) -> None:
        """Drop what lies wholly below ``offset`` (committed: nobody reads there again)."""
        with self._lock:
            ranges = self._ranges.get(tuple(partition))
            if ranges:
                keep = bisect.bisect_left(ranges, (offset, -1))
                while keep > 0 and ranges[keep - 1][1] > offset:
                    keep -= 1
                del ranges[:keep]


_INF = float("inf")


def _merge(ranges: list[tuple[int, int]], span: tuple[int, int]) -> None:
    """Insert ``span`` into sorted, disjoint, non-adjacent ``ranges``, merging."""
    start, stop = span
    i = bisect.bisect_left(ranges, (start, stop))
    if i > 0 and ranges[i - 1][1] >= start:
        i -= 1
        start = ranges[i][0]
        stop = max(stop, ranges[i][1])
    j = i
    while j < len(ranges) and ranges[j][0] <= stop:
        stop = max(stop, ranges[j][1])
        j += 1
    ranges[i:j] = [(start, stop)]
