"""One live stats stream (Server-Sent Events): push the stats body when it changes.

The stream waits on its environment's change event (:mod:`.changes`), so an idle
stream costs a parked task and nothing in Redis. Rules:

- the first event goes at once, unless the client resumes (``Last-Event-ID``) at the
  version it already has;
- after a change, the body is read again (through the reader's answer cache, so a
  thousand streams of the same question cost one read) and sent only if it differs;
- pushes are at least :data:`MIN_GAP_SECONDS` apart: a burst of changes (2,000 events/s)
  coalesces into one push, still within a second of the change;
- ``id:`` is the environment's change version as of the read; a comment line every
  :data:`HEARTBEAT_SECONDS` keeps proxies from closing an idle stream;
- Redis away: one ``event: unavailable`` (data: the error body), then a read again
  every :data:`~stream_app.api.change_feed.POLL_SECONDS`; the stream stays open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiohttp import web

from stream_app.api.change_feed import POLL_SECONDS, ChangeFeed

MIN_GAP_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
RETRY_MILLISECONDS = 2000
"""The reconnection delay the stream asks an EventSource for."""
HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
           "X-Accel-Buffering": "no"}


class Answer(NamedTuple):
    """A stats body as served (JSON bytes) and the environment's version it was read at."""

    body: bytes
    version: int


def event(answer: Answer) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (answer.version, answer.body)


def unavailable(body: bytes) -> bytes:
    return b"event: unavailable\ndata: %s\n\n" % body


class LiveStream:
    """Serves one prepared ``text/event-stream`` response until the client goes or the
    reader stops (``closing``)."""

    def __init__(self, response: web.StreamResponse, feed: ChangeFeed, environment: str,
                 read: Callable[[], Awaitable[Answer]], away: Callable[[BaseException], bool],
                 away_body: bytes, closing: asyncio.Event) -> None:
        self.response, self.feed, self.environment = response, feed, environment
        self.read, self.away, self.away_body, self.closing = read, away, away_body, closing

    async def run(self, last_event_id: str | None) -> None:
        woken = self.feed.watch(self.environment)
        woken.set()  # the first read, at once
        sent: bytes | None = None
        resume, said_away, last_push = last_event_id, False, float("-inf")
        try:
            await self.response.write(b"retry: %d\n\n" % RETRY_MILLISECONDS)
            while not self.closing.is_set():
                try:
                    await asyncio.wait_for(woken.wait(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    await self.response.write(b": keep-alive\n\n")
                    continue
                if self.closing.is_set():
                    break
                await asyncio.sleep(max(0.0, last_push + MIN_GAP_SECONDS - time.monotonic()))
                woken.clear()  # a change from here on wakes the next round
                try:
                    answer = await self.read()
                except Exception as exc:
                    if not self.away(exc):
                        raise
                    if not said_away:
                        await self.response.write(unavailable(self.away_body))
                        said_away = True
                    asyncio.get_running_loop().call_later(POLL_SECONDS, woken.set)
                    continue
                said_away = False
                if resume is not None and resume == str(answer.version):
                    sent = answer.body  # the client has this one already
                resume = None
                if answer.body != sent:
                    await self.response.write(event(answer))
                    sent, last_push = answer.body, time.monotonic()
        except ConnectionError:
            pass  # the client went away
        finally:
            self.feed.unwatch(self.environment, woken)
