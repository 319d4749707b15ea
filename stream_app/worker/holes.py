"""Partitions that stand still behind their log are fetched again.

After some rebalances Faust fetched past messages it never delivered (the short soak
test, one run in three or four: tens to hundreds of offsets after the base never reached
an agent while later ones did, or the tail of a partition never did), so the commit
stopped there for good, the callbacks in the hole were never counted and the watermark
of that input never reached "caught up". A worker timer (:func:`repair_holes`) notices a
partition that stands still: for :data:`HOLE_GRACE_SECONDS` in one consumer generation,
its acked offsets start above its base, or nothing is acked while the log ends beyond
the base, or it has no base at all; it is then sought back to its base (through the
consumer thread, under the seek lock). Processing is idempotent, so what was handled
already is only handled again. The agents never process past a hole
(``core/domain/order.py``; they ask for the re-fetch themselves through
:func:`schedule_refetch`), so the timer is left with the holes no later message reveals:
a partition's tail, and no base at all.

A re-fetch holds the seek lock at most :data:`REFETCH_TIMEOUT_SECONDS` (its seek waits
on the broker through the consumer thread; an outage must not leave the lock held when
the recovery's seek needs it), and a partition has at most one re-fetch pending (during
an outage every partition stands still).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread as ConsumerThread
from faust.types import TP

from stream_app.observe.logs import at
from stream_app.patching import Signature
from stream_app.worker.patches.absent_offsets import ABSENT
from stream_app.worker.patches.seeks import perform_seek, seek_lock

logger = logging.getLogger(__name__)

REQUIRES = (Signature(ConsumerThread, "seek_wait", ("self", "partitions")),)

HOLE_GRACE_SECONDS = 10.0
"""How long a partition may stand still behind its log before it is fetched again."""
REFETCH_TIMEOUT_SECONDS = 15.0
"""How long a re-fetch's seek may hold the seek lock."""
HOLE_REPAIRS = 3
"""Repairs per partition and base before a hole is taken for a gap in the log."""
HOLES = "_stream_app_holes"
_now = time.monotonic


class Hole:
    """A partition standing still at ``base`` in one generation, seen since ``since``."""

    __slots__ = ("base", "generation", "repairs", "since")

    def __init__(self, base: int | None, generation: int, since: float) -> None:
        self.base, self.generation, self.since, self.repairs = base, generation, since, 0


def repair_holes(self: Any) -> None:
    """Re-fetch every stream partition that stands still behind its log (see the module
    doc, patch 4); called once a second by a worker timer.

    A partition stands still when, in one consumer generation with the flow running:
    it has no commit base (the recovery's seek never ran: ``perform_seek`` again), or
    its acked offsets start above the base (a hole at the head), or nothing is acked
    while the log's end is beyond the base (a hole at the tail). A busy partition
    commits, which moves its base, so it never qualifies.
    """
    app = self.app
    if app.rebalancing or not app.flow_control.is_active():
        return
    changelogs = app.tables.changelog_topics
    for tp in self.assignment():
        if tp.topic in changelogs:
            continue
        base: int | None = self._committed_offset.get(tp)
        if base is None or _stands_still(self, tp, base):
            _notice_hole(self, tp, base)
        else:
            self.__dict__.get(HOLES, {}).pop(tp, None)


def _stands_still(self: Consumer, tp: TP, base: int) -> bool:
    base = ABSENT.run_end(tp, base)  # a marker or an aborted record is no hole
    acked = [offset for offset in self._acked.get(tp, ()) if offset >= base]
    if acked:
        return min(acked) > base
    end = _readable_end(self, tp)
    return end is not None and end > base


def _readable_end(self: Any, tp: TP) -> int | None:
    """Where the committed records of ``tp`` end: its last stable offset (a transaction
    still open is not a hole: nothing past its first record can be read yet), else the
    high-water mark."""
    consumer = getattr(self._thread, "_consumer", None)
    lso = consumer.last_stable_offset(tp) if consumer is not None else None
    end = lso if lso is not None and lso >= 0 else self.highwater(tp)
    return None if end is None else int(end)


def _notice_hole(self: Consumer, tp: TP, base: int | None) -> None:
    """Schedule a re-fetch of ``tp`` once it stood still for the grace period."""
    holes: dict[TP, Hole] = self.__dict__.setdefault(HOLES, {})
    generation = self.app.consumer_generation_id
    hole = holes.get(tp)
    now = _now()
    if hole is None or hole.base != base or hole.generation != generation:
        holes[tp] = Hole(base, generation, now)
        return
    if now - hole.since < HOLE_GRACE_SECONDS * (hole.repairs + 1):
        return
    if hole.repairs >= HOLE_REPAIRS:
        if hole.repairs == HOLE_REPAIRS:
            logger.error("%s[%d]: nothing from offset %s on arrives after %d re-fetches; a "
                         "gap in the log? The commit stays there", tp.topic, tp.partition,
                         base, HOLE_REPAIRS, extra=at(tp.topic, tp.partition, base))
            hole.repairs += 1
        return
    hole.repairs += 1
    hole.since = now
    logger.warning("%s[%d] stands still at offset %s behind its log; fetching it again",
                   tp.topic, tp.partition, base, extra=at(tp.topic, tp.partition, base))
    schedule_refetch(self, tp, base, generation,
                     lambda: self._committed_offset.get(tp) == base)


def schedule_refetch(self: Any, tp: TP, offset: int | None, generation: int | None,
                     still: Callable[[], bool] = lambda: True) -> None:
    """Seek ``tp`` back to ``offset`` soon, in a task of its own (the caller may be the
    agent whose stream the seek feeds; see :func:`refetch`). At most one per partition
    at a time: during an outage every partition stands still, and re-fetches queued
    behind one another would hold the seek lock for a long time after it ends."""
    tasks: dict[TP, asyncio.Future[None]] = self.__dict__.setdefault(
        "_stream_app_refetches", {})
    if tp in tasks:
        return
    task = asyncio.ensure_future(refetch(self, tp, offset, generation, still))
    tasks[tp] = task
    task.add_done_callback(lambda _: tasks.pop(tp, None))


async def refetch(self: Consumer, tp: TP, offset: int | None, generation: int | None,
                  still: Callable[[], bool] = lambda: True) -> None:
    """Seek ``tp`` back to ``offset`` through the consumer thread, under the seek lock,
    unless a rebalance got there first or ``still()`` no longer holds; no offset: seek
    every partition, as a recovery does."""
    if offset is None:
        await perform_seek(self)
        return
    async with seek_lock(self):
        if (self.app.consumer_generation_id == generation and tp in self.assignment()
                and still()):
            try:
                # Bounded: the seek waits on the consumer thread, which waits on the
                # broker; the lock must not be held through an outage (the recovery's
                # seek after a rebalance needs it). A partition still standing still is
                # found again by the repair timer.
                await asyncio.wait_for(cast(Any, self)._thread.seek_wait({tp: offset}),
                                       REFETCH_TIMEOUT_SECONDS)
            except Exception as exc:  # a rebalance took it meanwhile: its recovery seeks
                logger.warning("re-fetch of %s[%d] abandoned: %r", tp.topic, tp.partition, exc,
                               extra=at(tp.topic, tp.partition, offset))
