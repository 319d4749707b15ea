"""Patch: seek on assignment (``Consumer.perform_seek``).

After a rebalance faust seeks every partition to its committed offset, but aiokafka's
``seek_to_committed`` does nothing for a partition with no committed offset yet, so the
fetch position stays past the messages faust dropped when the generation changed (the
rest of a fetched batch). The patch seeks such partitions to their log start and records
that as the commit base. And the seeks run one at a time: Faust calls ``perform_seek``
from the recovery and from its fetch loop (records fetched while a rebalance stopped the
flow are dropped, and the fetch loop seeks them back), and the two calls can interleave
in the consumer thread, so a partition could end up at one call's offset with the other
call's commit base. A base below the position never commits again and, on an idle
partition, never counts as caught up: its watermark stops and the join stops deciding.
Each call now reads, seeks and records its bases under one lock, shielded from
cancellation, so the last call's offsets are both the position and the base.

The log-start seeks go through the consumer thread (``seek_wait``), like every other
consumer call. Faust's ``Consumer._seek`` calls aiokafka's ``seek`` from the calling
(main) thread, on a fetcher that lives in the consumer thread: the seek deletes the
partition's fetched records while the consumer thread may be iterating them, and
resolves that thread's futures from outside its loop. Seen here in ``stream-app bench``
(a fresh group's rebalance while records were being drained): ``KeyError:
TopicPartition(...)`` at ``del self._records[tp]`` in aiokafka's ``fetched_records``, and
the worker crashed (the same crash as robinhood/aiokafka#19).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from faust.transport.consumer import Consumer
from faust.types import TP

from stream_app.worker.patches.base import Patch, Signature


async def perform_seek(self: Consumer) -> None:
    """Seek every stream partition to its committed offset, or to its log start if none.

    Records the offset sought as the partition's commit base (``_committed_offset``), so
    :func:`new_offset` never commits past a message that was not processed. Invariant:
    after the call, each partition's fetch position and commit base come from the same
    call (see the module doc); a call cancelled midway still finishes.
    """
    await asyncio.shield(_seek_alone(self))


SEEK_LOCK = "_stream_app_seek_lock"


def seek_lock(self: Consumer) -> asyncio.Lock:
    """The consumer's one lock around seeks (perform_seek, hole repairs)."""
    lock: asyncio.Lock | None = self.__dict__.get(SEEK_LOCK)
    if lock is None:
        lock = self.__dict__[SEEK_LOCK] = asyncio.Lock()
    return lock


async def _seek_alone(self: Consumer) -> None:
    async with seek_lock(self):
        await _seek_and_record_bases(self)


async def _seek_and_record_bases(self: Consumer) -> None:
    committed: Mapping[Any, int | None] = await self.seek_to_committed()
    changelogs = self.app.tables.changelog_topics
    bases = {TP(tp.topic, tp.partition): offset for tp, offset in committed.items()
             if offset is not None and offset > 0}
    missing = [TP(tp.topic, tp.partition) for tp, offset in committed.items()
               if (offset is None or offset <= 0) and tp.topic not in changelogs]
    if missing:
        earliest = await self.earliest_offsets(*missing)
        starts = {tp: int(earliest.get(tp) or 0) for tp in missing}
        await cast(Any, self)._thread.seek_wait(starts)  # in the consumer's own thread
        bases.update(starts)
    self._committed_offset.update(bases)


PATCH = Patch("seek on assignment", Signature(Consumer, "perform_seek", ("self",)),
              lambda original: perform_seek, assigned=("_committed_offset",))
