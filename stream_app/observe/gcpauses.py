"""Python's garbage collector, the other thing that stops the worker's event loop.

A full (generation 2) collection scans every live container object at once, with the
loop stopped. Measured in the worker during a catch-up (``stream-app bench``, 200,000
events): one every ~0.5 s, 40-130 ms each, freeing nothing (``collected=0``): the
objects it scanned were the ~95,000 of the imported libraries and the app itself, alive
until exit, plus the batch in flight. Two things keep it short:

* :func:`freeze_startup_heap`: once the app is built, the objects alive then are moved
  to the permanent generation (``gc.freeze``, what CPython's docs suggest for a
  long-lived heap): later collections no longer scan them. The cost: a reference cycle
  among those objects that becomes garbage later is never freed (they are modules,
  classes, the app's services: they live as long as the process).
* the join keeps only one slice of a backlog alive at a time (``join.decide_due``).

:class:`GcPauses` measures every collection (a ``gc.callbacks`` hook) so the pause is
visible: ``callback_stats_gc_pause_max_seconds`` and ``..._seconds_total``. The hook runs
in whatever thread triggered the collection, in the middle of an allocation, so it only
stores two floats: no lock, no logging, no allocation of tracked objects (a lock taken
there could be one its own thread already holds).
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now out of the collector's reach;
    returns how many were frozen. Call once the app is built, before it runs."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("froze %d startup objects out of the garbage collector's scans", frozen)
    return frozen


class GcPauses:
    """The longest and the total time the collector stopped the process."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.total = 0.0
        self._started = 0.0

    def install(self) -> GcPauses:
        if self._hook not in gc.callbacks:
            gc.callbacks.append(self._hook)
        return self

    def uninstall(self) -> None:
        if self._hook in gc.callbacks:
            gc.callbacks.remove(self._hook)

    def _hook(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
            return
        pause = now - self._started
        self.total += pause
        if pause > self.worst:
            self.worst = pause
