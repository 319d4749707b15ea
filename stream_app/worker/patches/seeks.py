"""The consumer's seeks, one at a time, each recording its commit bases: what the
``seek_on_assignment`` patch installs as ``Consumer.perform_seek`` and what the hole
repair (``worker/holes.py``) runs before re-fetching. Why one at a time and why the log
start: ``seek_on_assignment.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from faust.transport.consumer import Consumer
from faust.types import TP


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
