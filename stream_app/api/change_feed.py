"""What the reader knows of changes: the environments' change notifications, and the
answers it may serve again because nothing changed since.

The worker's write scripts bump ``cbs:{e}:version`` and ``SPUBLISH`` it on the shard
channel ``cbs:{e}:changed`` in the same atomic call as the counters
(``core/store/lua/``). One subscription per reader process follows every
environment its tokens name, so nothing polls Redis per client.

Why pub/sub and not a Redis Stream: a reader only needs "this environment changed
since", never the changes themselves, and a reader that (re)subscribes re-reads
everything anyway. What a reader misses while its subscription is down is therefore
nothing it needs — provided it trusts nothing it read before. So:

Invariants (never a stale answer):
- an answer is served from :class:`AnswerCache` only while the subscription is up
  (``live``), and the cache is emptied every time the subscription (re)starts and on
  every notification of the answer's environment;
- an answer read from Redis is kept only if no notification of its environment arrived
  while it was being read (the environment's ``generation`` did not move);
- while the subscription is down, live streams are woken every second instead (they
  re-read; a push still follows a change within about a second).
The window left: a change is visible in Redis a moment before its notification reaches
the reader (the same Redis round trip; sub-millisecond on one host).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from redis.asyncio.cluster import RedisCluster

from stream_app.core.store.client import AnyRedis
from stream_app.core.store.layout import changes_channel

logger = logging.getLogger(__name__)

T = TypeVar("T")
CACHED_PER_ENVIRONMENT = 512
"""Answers kept per environment (distinct periods and agents) before starting afresh."""
POLL_SECONDS = 1.0
"""While the subscription is down, streams are woken this often."""
RETRY_SECONDS = (0.2, 5.0)
"""Backoff between subscription attempts: first, at most."""


class AnswerCache(Generic[T]):
    """Answers per environment and question, single-flight: a thousand streams asking
    the same question after a change cost one Redis read."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[Any, T]] = {}
        self.loading: dict[tuple[str, Any], asyncio.Future[T]] = {}
        self.generation: dict[str, int] = {}
        self.epoch = 0
        self.enabled = False
        self.hits = self.misses = 0

    def changed(self, environment: str) -> None:
        self.generation[environment] = self.generation.get(environment, 0) + 1
        self.answers.pop(environment, None)

    def clear(self, enabled: bool) -> None:
        """Forget everything: the subscription (re)started or stopped. Bumps the epoch,
        so no read begun before this is kept, whatever its environment."""
        self.epoch += 1
        self.answers.clear()
        self.enabled = enabled

    async def get(self, environment: str, question: Any, load: Callable[[], Awaitable[T]]) -> T:
        if not self.enabled:
            return await load()
        known = self.answers.get(environment, {}).get(question)
        if known is not None:
            self.hits += 1
            return known
        key = (environment, question)
        flight = self.loading.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        self.misses += 1
        generation = (self.epoch, self.generation.get(environment, 0))
        flight = self.loading[key] = asyncio.get_running_loop().create_future()
        try:
            answer = await load()
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self.loading[key]
        flight.set_result(answer)
        if self.enabled and (self.epoch, self.generation.get(environment, 0)) == generation:
            kept = self.answers.setdefault(environment, {})
            if len(kept) >= CACHED_PER_ENVIRONMENT:
                kept.clear()
            kept[question] = answer
        return answer


class ChangeFeed:
    """The reader's one subscription to the environments' change channels; wakes the
    live streams of an environment when it changes (:meth:`watch`)."""

    def __init__(self, redis: AnyRedis, environments: Iterable[str],
                 cache: AnswerCache[Any]) -> None:
        self.redis = redis
        self.channels = {changes_channel(e): e for e in sorted(set(environments))}
        self.cache = cache
        self.watchers: dict[str, set[asyncio.Event]] = {}
        self.live = False
        self.notifications = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False

    def watch(self, environment: str) -> asyncio.Event:
        """An event set whenever ``environment`` may have changed; :meth:`unwatch` it."""
        event = asyncio.Event()
        self.watchers.setdefault(environment, set()).add(event)
        return event

    def unwatch(self, environment: str, event: asyncio.Event) -> None:
        self.watchers.get(environment, set()).discard(event)

    def streams(self) -> int:
        return sum(len(w) for w in self.watchers.values())

    def _wake(self, environments: Iterable[str]) -> None:
        for environment in environments:
            for event in self.watchers.get(environment, ()):
                event.set()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._run(), name="change-feed"),
                      loop.create_task(self._poll_while_away(), name="change-feed-poll")]

    async def stop(self) -> None:
        """Cancel the subscription. A cancellation that lands inside redis-py's read
        timeout can be swallowed (redis/redis-py#2551), so the loops also check
        ``stopping`` after every read (at most a second apart)."""
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.wait(self.tasks, timeout=3.0)
        self._wake(self.watchers)

    async def _poll_while_away(self) -> None:
        while not self.stopping:
            await asyncio.sleep(POLL_SECONDS)
            if not self.live:
                self._wake(self.watchers)

    async def _run(self) -> None:
        delay, away = RETRY_SECONDS[0], False
        while not self.stopping:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away, a failover: streams poll until back
                if not away:
                    logger.warning("change notifications unavailable (%s); live streams "
                                   "re-read every %.0f s until they are back",
                                   type(exc).__name__, POLL_SECONDS)
                away = True
            else:
                delay, away = RETRY_SECONDS[0], False
            self.live = False
            self.cache.clear(enabled=False)
            self._wake(self.watchers)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_SECONDS[1])

    async def _follow(self) -> None:
        """Subscribe, confirm every channel, then trust the cache until an error."""
        if not self.channels:
            await asyncio.Event().wait()
        cluster = isinstance(self.redis, RedisCluster)
        if cluster:  # the slot map: which node holds each channel (after any failover too)
            await self.redis.initialize()
        pubsub: Any = self.redis.pubsub()
        try:
            await pubsub.ssubscribe(*self.channels)
            confirmed: set[str] = set()
            while confirmed != set(self.channels) and not self.stopping:
                message = await self._next(pubsub, cluster)
                if message and _text(message["type"]) == "ssubscribe":
                    confirmed.add(_text(message["channel"]))
            self.live = True
            self.cache.clear(enabled=True)  # nothing read before the subscription counts
            self._wake(self.watchers)
            logger.info("following changes of %d environment(s)", len(self.channels))
            while not self.stopping:
                message = await self._next(pubsub, cluster)
                if message is None:
                    continue
                kind = _text(message["type"])
                if kind == "sunsubscribe":  # the slot moved (a failover): start afresh
                    raise ConnectionError("a change channel was unsubscribed")
                if kind == "smessage":
                    environment = self.channels.get(_text(message["channel"]))
                    if environment is not None:
                        self.notifications += 1
                        self.cache.changed(environment)
                        self._wake((environment,))
        finally:
            await pubsub.aclose()

    @staticmethod
    async def _next(pubsub: Any, cluster: bool) -> Any:
        """The next message, subscription confirmations included; None after 1 s."""
        if cluster:
            return await pubsub.get_sharded_message(ignore_subscribe_messages=False,
                                                    timeout=1.0)
        return await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
