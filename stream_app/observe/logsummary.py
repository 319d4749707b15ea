"""Repeated library errors summarised, so a log stays readable through an outage.

While a broker is away, aiokafka logs ``Unable connect to node with id 1`` and
``Unable to update metadata from [1]`` for every retry of every client: thousands of
lines a second, which bury the one line that matters and fill disks. A filter on the
log handlers lets the first record of each kind through, holds back the repeats for
``INTERVAL`` seconds, then writes one line per service with how many it held back and
of what kind. A kind is the library, the level and the message *template* (the
arguments differ: node ids, partitions). Only the chatty libraries are summarised
(:data:`SERVICES`); this project's own lines always pass, they are written once per
outage already.

Invariant: no record is dropped without being counted in a summary line, which is
written at the latest with the next record of that service after the interval (and at
the next tick of :meth:`RepeatSummary.flush`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

INTERVAL = 10.0
SERVICES = {"aiokafka": "kafka", "kafka": "kafka", "faust": "kafka", "mode": "kafka",
            "redis": "redis"}


def service_of(logger_name: str) -> str | None:
    return SERVICES.get(logger_name.split(".", 1)[0])


class RepeatSummary(logging.Filter):
    """Let one record of each kind through per interval; count the rest."""

    def __init__(self, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.seen: dict[tuple[str, int, str], float] = {}
        self.held: dict[str, Counter[str]] = {}
        self.window_start: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, "_repeat_verdict", None)
        if verdict is None:  # one verdict per record, however many handlers ask
            verdict = record._repeat_verdict = self._verdict(record)
        return bool(verdict)

    def _verdict(self, record: logging.LogRecord) -> bool:
        if getattr(record, "summary", False) or record.levelno < logging.WARNING:
            return True
        service = service_of(record.name)
        if service is None:
            return True
        now = self.clock()
        self._flush_service(service, now)
        kind = (record.name.split(".", 1)[0], record.levelno, str(record.msg))
        first = self.seen.get(kind)
        if first is None or now - first >= self.interval:
            self.seen[kind] = now
            return True
        self.held.setdefault(service, Counter())[str(record.msg)] += 1
        self.window_start.setdefault(service, now)
        return False

    def flush(self) -> None:
        """Write the summary of every service whose interval is over."""
        now = self.clock()
        for service in list(self.held):
            self._flush_service(service, now)

    def _flush_service(self, service: str, now: float) -> None:
        held = self.held.get(service)
        if not held or now - self.window_start[service] < self.interval:
            return
        del self.held[service]
        started = self.window_start.pop(service)
        total = sum(held.values())
        kinds = "; ".join(f"{n}x {template!r}" for template, n in held.most_common(3))
        logging.getLogger(f"stream_app.logs.{service}").warning(
            "%s: %d repeated log lines held back in the last %.0f s (%s)", service, total,
            now - started, kinds, extra={"summary": True})

