"""Which messages of an agent's batch are processed now, and which are acked.

Each partition in offset order, every offset once (``core/domain/order.py``): the next offsets
are processed and acked, offsets processed before in this consumer generation only
acked, and messages past a gap neither. A gap made only of offsets the fetch read past
without a record (transaction markers, aborted records, compacted keys:
``AbsentOffsets``) is passed at once. Any other gap that stays is fetched again through
``refetch``; after a few re-fetches the broker is asked through ``ask`` (a read outside
the consumer group) whether the gap holds records: skipped only on a "no". A message
fetched before a rebalance may belong to a partition this worker lost: processing it
would write another owner's state (its acks are refused anyway, so the owner processes
it); dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.types import TP

from stream_app.core.domain.order import GAP_REFETCHES, AbsentOffsets, GapRepairs, InOrder
from stream_app.core.pipeline.intake import Message
from stream_app.observe.logs import at

logger = logging.getLogger(__name__)

Ask = Callable[[TP, int, int], Awaitable[bool | None]]
"""Whether the broker holds records of a partition in ``[start, stop)`` (None: no answer)."""


class Admission:
    """One agent's admission of its batches (see the module doc)."""

    def __init__(self, generation: Callable[[], int | None],
                 base: Callable[[TP], int | None],
                 refetch: Callable[[TP, int, int | None], None],
                 ask: Ask,
                 absent: AbsentOffsets,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.generation = generation
        self.order: InOrder[TP] = InOrder(base)
        self.repairs = GapRepairs()
        self.refetch = refetch
        self.ask = ask
        self.absent = absent
        self.clock = clock
        self.asking: set[asyncio.Task[None]] = set()

    def __call__(self, batch: Sequence[Any]) -> tuple[list[Message], list[Any]]:
        """Of a batch of Faust messages, those to process, in order, and those to ack
        once they are."""
        generation = self.generation()
        messages, done = [], []
        gaps = self.repairs.gaps
        for m in batch:
            if m.generation_id not in (None, generation):
                continue
            verdict = self.order.admit(generation, m.tp, m.offset)
            if verdict == "gap" and (self._absent_before(m.tp, m.offset)
                                     or self._skips(m.tp, m.offset, generation)):
                verdict = self.order.admit(generation, m.tp, m.offset)
            if verdict != "gap":
                done.append(m)
                if verdict == "next":
                    messages.append(m)
                    if gaps and m.tp in gaps:
                        self.repairs.closed(m.tp)
        return messages, done

    def forget(self) -> None:
        """A batch was abandoned half done: start again from the commit bases."""
        self.order.forget()

    def holding(self) -> list[TP]:
        """Partitions with a gap the broker says holds records that never arrived."""
        return [tp for tp in self.repairs.holding() if isinstance(tp, TP)]

    def _absent_before(self, tp: TP, offset: int) -> bool:
        """Pass the offsets from the expected one on that a fetch read past without a
        record (no re-fetch would bring them); True if that closes the gap to ``offset``."""
        missing = self.order.expected(tp)
        if missing is None:
            return False
        passed = self.absent.run_end(tp, missing)
        if passed > missing:  # the part known absent is passed; what is left is a gap
            self.order.skip_to(tp, min(passed, offset))
        return passed >= offset

    def _skips(self, tp: TP, offset: int, generation: int | None) -> bool:
        """Act on a gap before ``offset``; True if it is to be skipped."""
        missing = self.order.expected(tp)
        action = self.repairs.on_gap(tp, missing, self.clock())
        if missing is None:
            return False
        if action == "refetch":
            logger.warning("%s[%d]: offset %d arrived before %s; fetching from there again",
                           tp.topic, tp.partition, offset, missing,
                           extra=at(tp.topic, tp.partition, missing))
            self.refetch(tp, missing, generation)
        elif action == "ask":
            task = asyncio.ensure_future(self._ask(tp, missing, offset))
            self.asking.add(task)
            task.add_done_callback(self.asking.discard)
        elif action == "skip":
            logger.error("%s[%d]: offsets %s to %d hold no records (the broker says so); "
                         "skipping them", tp.topic, tp.partition, missing, offset - 1,
                         extra=at(tp.topic, tp.partition, missing))
            self.order.skip_to(tp, offset)
        return action == "skip"

    async def _ask(self, tp: TP, missing: int, offset: int) -> None:
        holds = await self.ask(tp, missing, offset)
        if holds:
            logger.error("%s[%d]: offsets %d to %d hold records that never arrived after %d "
                         "re-fetches; fetching again (not ready meanwhile)", tp.topic,
                         tp.partition, missing, offset - 1, GAP_REFETCHES,
                         extra=at(tp.topic, tp.partition, missing))
        self.repairs.answered(tp, missing, holds)
