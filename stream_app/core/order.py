"""Each partition processed in offset order, every offset once: what the rest relies on.

The join reads a keyed partition's progress record as a promise about every record
before it, and the intake's watermark promises every offset below what it delivered
(``progress.py``). Both hold only if each partition is processed in offset order, with
nothing skipped. faust-streaming 0.15 does not guarantee it: after some rebalances it
delivers a partition's later messages while earlier ones, from its commit base on,
never reach the agent (``faust_compat``, patch 4). Processing past such a hole decided
a callback without the outbound call in the hole (the short soak test, once).

So every agent asks :class:`InOrder` about each message before processing it: the
next offset of its partition is processed; an offset below it (fetched again) was
processed already in this consumer generation and is only acked; an offset above it
is a **gap**: not processed, not acked, and, if it does not close by itself, the
partition is fetched again from the first missing offset (:class:`GapRepairs` says
when). A gap that is still there after :data:`GAP_REFETCHES` re-fetches is taken for a
real one (a compacted or transactional input has offsets without records) and skipped
over, with an error logged.

Pure: no Faust, Kafka or Redis here; the agents (``agents.py``) and the consumer glue
(``faust_compat.refetch``) act on the verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, Literal, TypeVar

Verdict = Literal["next", "again", "gap"]
GapAction = Literal["refetch", "wait", "skip"]

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
        if expected is None or offset > expected:
            return "gap"
        if offset < expected:
            return "again"
        self.next[partition] = offset + 1
        return "next"

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


class GapRepairs:
    """When to fetch a partition again for a missing offset, and when to give up.

    A gap seen first is waited on: right after a seek (a rebalance, a re-fetch), messages
    fetched before it still drain past the new position, and the sought ones follow.
    Only a gap still there :data:`GAP_REFETCH_SECONDS` later is fetched again, up to
    :data:`GAP_REFETCHES` times, then skipped. With no commit base yet (``None``) there
    is nothing to fetch from: the recovery's seek is about to run (and the worker's
    timer runs it if it never does).
    """

    def __init__(self) -> None:
        self.tries: dict[Hashable, tuple[int, int, float]] = {}
        """partition -> (missing offset, re-fetches so far, when last seen or fetched)."""

    def on_gap(self, partition: Hashable, missing: int | None, now: float) -> GapAction:
        """What to do about a message past ``missing`` seen at ``now``."""
        if missing is None:
            return "wait"
        known = self.tries.get(partition)
        if known is None or known[0] != missing:
            self.tries[partition] = (missing, 0, now)
            return "wait"
        _, tries, since = known
        if now - since < GAP_REFETCH_SECONDS:
            return "wait"
        if tries < GAP_REFETCHES:
            self.tries[partition] = (missing, tries + 1, now)
            return "refetch"
        del self.tries[partition]
        return "skip"
