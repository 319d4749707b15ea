"""How long the event loop is held by one step of work (the worker's loop lag).

A coroutine that does not yield stops everything else on the loop: heartbeats, acks,
timers, the health pages. A probe asks to be woken every ``INTERVAL`` and measures how
late it was woken; that lateness is the longest step that ran meanwhile (to within the
interval). Observed into ``callback_stats_event_loop_lag_seconds``; the worst seen is
kept for the benchmark's report.

A lag is not always a step of ours: on a busy machine the loop thread may simply not be
scheduled (other processes on the cores, Faust's consumer thread holding the GIL). So
the probe also reads the loop thread's own CPU time across each sleep
(``time.thread_time``): the lag's **busy** part, at most that CPU time, is what a step
of ours held the loop for; the worst is ``callback_stats_event_loop_lag_busy_max_seconds``.

The lag says *that* the loop was held, not by what: by the time the probe wakes, the
step is over. So a watcher thread looks at the probe's last wake-up every
``WATCH_EVERY``; once the loop has been held for ``BLOCK_REPORT_SECONDS``, it logs the
loop thread's stack right then, once per block: the step that holds it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

from stream_app.observe import metrics

logger = logging.getLogger(__name__)

INTERVAL = 0.05
WATCH_EVERY = 0.02
BLOCK_REPORT_SECONDS = 0.25
"""A block this long gets its stack logged (at most one line per block)."""


class LoopLag:
    def __init__(self, report_after: float = BLOCK_REPORT_SECONDS) -> None:
        self.worst = 0.0
        self.worst_busy = 0.0
        """The longest a lag's loop thread was on the CPU (see the module doc)."""
        self.report_after = report_after
        self.woke = time.perf_counter()
        self.reported: list[str] = []
        """The stacks logged so far (the newest last; for tests)."""
        self._task: asyncio.Task[None] | None = None
        self._loop_thread: int | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._probe())
            self._loop_thread = threading.get_ident()
            threading.Thread(target=self._watch, name="loop-block-watch", daemon=True).start()

    def _watch(self) -> None:
        """In a thread of its own: the loop's stack, once per block that lasts."""
        seen = None
        while self._task is not None and not self._task.done():
            time.sleep(WATCH_EVERY)
            woke = self.woke
            held = time.perf_counter() - woke - INTERVAL
            if held >= self.report_after and seen != woke:
                seen = woke
                frame = sys._current_frames().get(self._loop_thread or 0)
                stack = "".join(traceback.format_stack(frame)) if frame else "?"
                self.reported.append(stack)
                logger.warning("event loop held for %.2f s so far, by:\n%s", held, stack)

    async def _probe(self) -> None:
        while True:
            asked = self.woke = time.perf_counter()
            cpu = time.thread_time()
            await asyncio.sleep(INTERVAL)
            lag = max(0.0, time.perf_counter() - asked - INTERVAL)
            busy = min(lag, time.thread_time() - cpu)
            metrics.LOOP_LAG.observe(lag)
            if lag > self.worst:
                self.worst = lag
                metrics.LOOP_LAG_WORST.set(lag)
            if busy > self.worst_busy:
                self.worst_busy = busy
                metrics.LOOP_LAG_BUSY_WORST.set(busy)
