"""The worker's timers other than progress: how each runs (:func:`logged`), and what
they do: prune idle contacts, re-fetch partitions standing still, notice input
partitions added at run time.

A timer's failure is never fatal: it is logged (an outage once, when it starts and when
it ends), counted, and retried at its next tick; one that keeps failing makes the worker
not ready (``observe/health.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from stream_app.core import outages
from stream_app.core.domain.progress import InputPartition, Watermarks
from stream_app.core.outages import outage_of
from stream_app.observe import metrics
from stream_app.observe.health import Health

logger = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 300.0
HOLE_CHECK_SECONDS = 1.0
"""How often partitions standing still behind their log are looked for (``holes.py``)."""
INPUT_CHECK_SECONDS = 30.0
"""How often the input topics' partition counts are asked for: as often as the consumer
refreshes its metadata (``worker/app.py``), the soonest it could read a new partition.
Every 5 s cost the worker ~30% more CPU per event and ~45 MiB of RSS in the bench (A/B
in one session); why a metadata request costs that much there is not understood."""
INPUT_CHECK_TIMEOUT = 10.0


class Housekeeping:
    """Timers of the join's upkeep; each reads the app's state through callables."""

    def __init__(self, busy: Callable[[], bool],
                 prune: Callable[[], Awaitable[int]],
                 send_changes: Callable[[], Awaitable[None]],
                 repair: Callable[[], None],
                 inputs: Callable[[], Awaitable[Sequence[tuple[str, int]]]],
                 watermarks: Watermarks) -> None:
        self.busy, self.prune, self.send_changes = busy, prune, send_changes
        self.repair, self.inputs, self.watermarks = repair, inputs, watermarks

    async def prune_idle(self) -> None:
        if not self.busy():
            logger.info("pruned %d idle contacts", await self.prune())
            await self.send_changes()

    async def repair_holes(self) -> None:
        self.repair()

    async def watch_inputs(self) -> None:
        """Partitions added to an input topic join the low watermark: the join decides
        nothing until they report progress (``core/domain/progress.py``)."""
        found = await asyncio.wait_for(self.inputs(), INPUT_CHECK_TIMEOUT)
        added = self.watermarks.expect(InputPartition(t, p) for t, p in found)
        if added:
            logger.warning("input partitions added: %s; decisions wait for their progress",
                           ", ".join(f"{s.topic}[{s.partition}]" for s in sorted(added)))


def logged(work: Any, name: str, health: Health) -> Any:
    """A timer's failure is logged and retried at its next tick, never fatal; it is
    counted, and one that keeps failing makes the worker not ready (``health``)."""
    away: set[str] = set()

    async def timer() -> None:
        try:
            await work()
        except Exception as exc:
            metrics.TIMER_FAILURES.labels(name).inc()
            health.timer_ran(name, ok=False)
            service = outage_of(exc)
            if service is None:
                logger.exception("timer %s failed; retrying at its next tick", name)
            else:  # an outage: said once when it starts and when it ends, not per tick
                away.add(service)
                outages.LOG.failed(service, exc)
        else:
            health.timer_ran(name, ok=True)
            while away:
                outages.LOG.succeeded(away.pop())
    timer.__name__ = timer.__qualname__ = name.replace("-", "_")
    return timer
