"""Whether the worker is alive (making progress) and ready (able to do its work).

Pure: the worker's glue feeds observations in (messages processed, the committed offsets
and the brokers' end offsets of its partitions, which services answered, which timers
failed) and asks two questions with a clock of its choosing.

**Liveness** answers "should a supervisor restart this process?". A worker is *stalled*
while input is waiting for it (some assigned partition's end offset is beyond its
committed offset) and, for that whole time, it neither processed a message nor committed
an offset. Being idle is not a stall, and neither is being slow: any progress resets the
clock. A stall longer than ``stall_after`` fails liveness. Kafka being away does not by
itself: the last end offsets known still say whether input waits, so a worker that
stays stuck after the broker came back is caught, while one that resumes is not.

**Readiness** answers "is it doing its job now?": partitions assigned and not
rebalancing or recovering, watermarks sent recently, Kafka and Redis answering, and no
timer failing again and again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

TIMER_FAILURES_NOT_READY = 3
"""Consecutive failures of one timer that make the worker not ready."""


@dataclass
class Health:
    stall_after: float
    """Seconds of stall after which liveness fails."""
    stale_after: float = 10.0
    """Seconds after which a service's last answer or the last watermark is too old."""
    clock: Callable[[], float] = time.monotonic
    last_progress: float = field(default=0.0)
    waiting: bool = False
    committed: dict[Any, int] = field(default_factory=dict)
    kafka_at: float | None = None
    redis_at: float | None = None
    watermarks_at: float | None = None
    timer_failures: dict[str, int] = field(default_factory=dict)
    holding: list[Any] = field(default_factory=list)
    """Partitions with a gap the broker says holds records that never arrived."""

    def __post_init__(self) -> None:
        self.last_progress = self.clock()

    # -- observations -------------------------------------------------------------------

    def processed(self, count: int) -> None:
        """``count`` messages were processed (or acked as processed before)."""
        if count:
            self.last_progress = self.clock()

    def offsets(self, committed: Mapping[Any, int | None], ends: Mapping[Any, int]) -> None:
        """The committed offsets of the assigned partitions and their end offsets.

        A committed offset that moved is progress; input waits where an end is beyond
        what is committed. With nothing waiting the clock restarts (idle is not stall)."""
        now = self.clock()
        known = {tp: int(offset) for tp, offset in committed.items() if offset is not None}
        if any(self.committed.get(tp) != offset for tp, offset in known.items()):
            self.last_progress = now
        self.committed = known
        self.waiting = any(end > known.get(tp, 0) for tp, end in ends.items())
        if not self.waiting:
            self.last_progress = now
        self.kafka_at = now

    def redis_answered(self) -> None:
        self.redis_at = self.clock()

    def watermarks_sent(self) -> None:
        self.watermarks_at = self.clock()

    def gaps_holding(self, partitions: list[Any]) -> None:
        self.holding = partitions

    def timer_ran(self, name: str, ok: bool) -> None:
        self.timer_failures[name] = 0 if ok else self.timer_failures.get(name, 0) + 1

    # -- questions ----------------------------------------------------------------------

    def stalled_seconds(self) -> float:
        """How long input has waited with no progress at all (0 while progressing)."""
        return max(0.0, self.clock() - self.last_progress) if self.waiting else 0.0

    def live(self) -> tuple[bool, dict[str, Any]]:
        stalled = self.stalled_seconds()
        ok = stalled <= self.stall_after
        return ok, {"status": "ok" if ok else "stalled", "stalled_seconds": round(stalled, 1),
                    "input_waiting": self.waiting, "stall_after_seconds": self.stall_after}

    def ready(self, assigned: int, rebalancing: bool) -> tuple[bool, dict[str, Any]]:
        """Ready to serve: every check below holds (the body says which do not)."""
        now = self.clock()

        def fresh(at: float | None) -> bool:
            return at is not None and now - at <= self.stale_after

        failing = sorted(n for n, c in self.timer_failures.items()
                         if c >= TIMER_FAILURES_NOT_READY)
        checks = {"partitions_assigned": assigned > 0, "not_rebalancing": not rebalancing,
                  "kafka_reachable": fresh(self.kafka_at),
                  "redis_reachable": fresh(self.redis_at),
                  "watermarks_flowing": fresh(self.watermarks_at),
                  "timers_healthy": not failing,
                  "no_missing_records": not self.holding}
        ok = all(checks.values())
        return ok, {"status": "ready" if ok else "not ready", "checks": checks,
                    "failing_timers": failing}
