"""Retrying through an outage of Kafka or Redis: backoff with jitter, logged once.

Giving up on a write would lose data, so an effect that fails because a service is
away is retried until it succeeds (every effect here is idempotent). What an outage
must not do is flood the log or hammer the service on its way back: attempts back off
exponentially with full jitter (so workers that lost the service together do not come
back in step), and the log says each outage once when it starts, every
:data:`REPORT_EVERY` seconds while it lasts, and once when it ends, with its length and
number of retries.

What counts as an outage is decided here once (:func:`outage_of`), for the worker's
retries, the reader's 503s and live streams, and the CLI's one-line errors alike.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from stream_app.observe import metrics

logger = logging.getLogger(__name__)

R = TypeVar("R")


class ReplicasBehind(Exception):
    """A batch of Redis writes is not known to have reached ``min_replicas`` replicas
    (``store/client.py``): retried like an outage."""


REDIS_AWAY = (ConnectionError, TimeoutError, BusyLoadingError, ClusterDownError,
              TryAgainError, SlotNotCoveredError, ReplicasBehind, OSError)
"""Redis errors that mean "Redis is away" (or a failover is going on); any other error
is a bug or bad data."""
CLUSTER_AWAY = ("Redis Cluster cannot be connected", "All slots are not covered")
"""How redis-py's cluster client says no node it knows answers, or a failover left slots
without a master (a ``RedisClusterException``, which it also raises for errors of ours,
so the message decides). A client that never reached the cluster knows only the URL's
node: with that node down it cannot even learn the others, until it is back."""
KAFKA_AWAY = frozenset({"KafkaConnectionError", "KafkaTimeoutError", "NodeNotReadyError"})
"""aiokafka errors that mean the broker is away, besides those it marks retriable."""


def outage_of(exc: BaseException) -> str | None:
    """The service whose absence ``exc`` means (``"kafka"``, ``"redis"``), or None: not an
    outage but a bug or bad data, never retried."""
    if isinstance(exc, KafkaError):
        away = bool(getattr(exc, "retriable", False)) or type(exc).__name__ in KAFKA_AWAY
        return "kafka" if away else None
    if isinstance(exc, REDIS_AWAY) or (isinstance(exc, RedisClusterException)
                                       and str(exc).startswith(CLUSTER_AWAY)):
        return "redis"
    return None


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean a service is away, not that a message is bad."""
    return outage_of(exc) is not None


def redis_away(exc: BaseException) -> bool:
    return outage_of(exc) == "redis"
FIRST_DELAY = 0.05
MAX_DELAY = 5.0
REPORT_EVERY = 30.0


@dataclass
class Outage:
    """One service's current outage, as the log tells it."""

    service: str
    since: float
    retries: int = 0
    reported: float = field(default=0.0)


class OutageLog:
    """Per service: is it away, since when, how many retries; says so once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.current: dict[str, Outage] = {}

    def failed(self, service: str, exc: BaseException) -> None:
        now = self.clock()
        outage = self.current.get(service)
        if outage is None:
            self.current[service] = Outage(service, now, reported=now)
            logger.warning("%s unavailable (%s: %s); retrying with backoff until it is back",
                           service, type(exc).__name__, exc)
            return
        outage.retries += 1
        if now - outage.reported >= REPORT_EVERY:
            outage.reported = now
            logger.warning("%s still unavailable after %.0f s (%d retries; last: %s)",
                           service, now - outage.since, outage.retries, type(exc).__name__)

    def seconds(self, service: str) -> float:
        """How long ``service`` has been away (0: it answers)."""
        outage = self.current.get(service)
        return 0.0 if outage is None else self.clock() - outage.since

    def succeeded(self, service: str) -> None:
        outage = self.current.pop(service, None)
        if outage is not None:
            logger.warning("%s is back after %.1f s (%d retries)", service,
                           self.clock() - outage.since, outage.retries)


LOG = OutageLog()
for _service in ("kafka", "redis"):  # read at scrape time
    metrics.OUTAGE_SECONDS.labels(_service).set_function(partial(LOG.seconds, _service))


def backoff(attempt: int, rnd: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential, capped, with
    full jitter."""
    ceiling = min(MAX_DELAY, FIRST_DELAY * 2 ** (attempt - 1))
    return float(ceiling * (0.5 + 0.5 * rnd()))


async def through_outages(attempt: Callable[[], Awaitable[R]],
                          outage_of: Callable[[BaseException], str | None],
                          log: OutageLog = LOG) -> R:
    """``attempt()`` until it succeeds; an error ``outage_of`` names a service for is
    retried, any other propagates."""
    tries = 0
    away: set[str] = set()
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            service = outage_of(exc)
            if service is None:
                raise
            away.add(service)
            log.failed(service, exc)
            metrics.OUTAGE_RETRIES.labels(service).inc()
            tries += 1
            await asyncio.sleep(backoff(tries))
            continue
        for service in away:
            log.succeeded(service)
        return result
