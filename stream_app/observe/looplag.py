"""How long the event loop is held by one step of work (the worker's loop lag).

A coroutine that does not yield stops everything else on the loop: heartbeats, acks,
timers, the health pages. A probe asks to be woken every ``INTERVAL`` and measures how
late it was woken; that lateness is the longest step that ran meanwhile (to within the
interval). Observed into ``callback_stats_event_loop_lag_seconds``; the worst seen is
kept for the benchmark's report.
"""

from __future__ import annotations

import asyncio
import time

from stream_app.observe import metrics

INTERVAL = 0.05


class LoopLag:
    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._probe())

    async def _probe(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(INTERVAL)
            lag = max(0.0, time.perf_counter() - asked - INTERVAL)
            metrics.LOOP_LAG.observe(lag)
            if lag > self.worst:
                self.worst = lag
                metrics.LOOP_LAG_WORST.set(lag)
