"""The health probe timer and where every task waits when the worker stalls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from faust.types import TP
from redis.exceptions import TimeoutError as RedisTimeout

from stream_app.core.kafka.topics import EndOffsets
from stream_app.core.store.counters import CounterStore
from stream_app.observe import metrics, taskdump
from stream_app.observe.health import Health
from stream_app.observe.looplag import LoopLag
from stream_app.worker.tables import processed_base

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 5.0


class HealthProbe:
    """The health probe timer: committed vs end offsets of every assigned partition, a
    Redis ping, the stall gauge; a stall past the limit logs, once per stall, where every
    task waits (:mod:`taskdump`). Raises the first failure (counted by the timer)."""

    __name__ = "probe_health"

    def __init__(self, app: Any, health: Health, store: CounterStore,
                 end_offsets: EndOffsets, lag: LoopLag,
                 holding: Callable[[], list[TP]] = list) -> None:
        self.app, self.health, self.store = app, health, store
        self.end_offsets, self.lag, self.holding = end_offsets, lag, holding
        self.dumped = False

    async def __call__(self) -> None:
        self.lag.start()
        failures = []
        for probe in (self.kafka, self.redis):
            try:
                await probe()
            except Exception as exc:
                failures.append(exc)
        self.health.gaps_holding(self.holding())
        self.watch_stall()
        if failures:
            raise failures[0]

    async def kafka(self) -> None:
        tps = sorted(self.app.consumer.assignment())
        if tps:
            ends = await self.end_offsets([(tp.topic, tp.partition) for tp in tps])  # bounded
            self.health.offsets({tp: processed_base(self.app, tp) for tp in tps},
                                {TP(t, p): end for (t, p), end in ends.items()})

    async def redis(self) -> None:
        try:
            await asyncio.wait_for(self.store.redis.ping(), PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise RedisTimeout("Redis did not answer a ping") from None
        self.health.redis_answered()

    def watch_stall(self) -> None:
        stalled = self.health.stalled_seconds()
        metrics.STALLED.set(stalled)
        if stalled > self.health.stall_after and not self.dumped:
            logger.error("stalled for %.0f s with input waiting; where every task waits:\n%s",
                         stalled, taskdump.dump(event_loops(self.app)))
        self.dumped = stalled > self.health.stall_after


def event_loops(app: Any) -> dict[str, asyncio.AbstractEventLoop]:
    """The worker's loop and its Kafka consumer thread's (for :mod:`taskdump`)."""
    loops = {"main": asyncio.get_running_loop()}
    thread = getattr(app.consumer, "_thread", None)
    if thread is not None and getattr(thread, "thread_loop", None) is not None:
        loops["consumer-thread"] = thread.thread_loop
    return loops
