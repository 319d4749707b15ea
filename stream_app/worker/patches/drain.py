"""Patch: no task per message (``Consumer._drain_messages``).

The fetch loop wraps every message's delivery in ``wait_first(callback(message),
suspend_flow.wait())``: two tasks and an ``asyncio.wait`` per message, so that a
delivery blocked on a full stream buffer is abandoned when a rebalance suspends the flow
(faust-streaming #223). The patch starts the delivery in place; only when it must wait
(the buffer is full) does it finish under the same ``wait_first``. Messages fetched while
the flow is suspended are not delivered, as before (their partitions are sought again
after the rebalance). The read-offset and gap bookkeeping of the original loop is gone
with :mod:`.read_offsets`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.consumer import Consumer

from stream_app.patching import Patch, Signature
from stream_app.worker.patches.inbox import INBOXES

logger = logging.getLogger(__name__)


class Resumed:
    """Awaitable that finishes a coroutine already started by hand (``coro.send(None)``
    returned ``waiting``, the future it waits on). Cancellation and every other
    exception thrown into the awaiting task are passed on to the coroutine."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Any, waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    def __await__(self) -> Any:
        waiting = self.waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:
                try:
                    waiting = self.coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting = self.coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def deliver(consumer: Any, message: Any) -> None:
    """Hand ``message`` to its agent's inbox (:mod:`.inbox`), else to its stream; a task
    only if the inbox or the stream buffer is full."""
    if consumer.suspend_flow.is_set():
        return
    inbox = INBOXES.get(message.topic)
    if inbox is not None:
        flow = consumer.app.flow_control
        if not flow.is_active():  # as the conductor: not while tables recover
            await flow.acquire()
        while not inbox.put(message):
            await consumer.wait_first(inbox.space(), consumer.suspend_flow.wait())
            if consumer.suspend_flow.is_set():
                return
        return
    coro = consumer.callback(message)
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    await consumer.wait_first(Resumed(coro, waiting), consumer.suspend_flow.wait())


async def deliver_all(self: Consumer, messages: Any) -> None:
    """One fetch's messages, the loop given back every 100, committing as Faust does."""
    since_yield = 0
    async for _tp, message in messages:
        since_yield += 1
        if since_yield > 100:
            await asyncio.sleep(0)
            since_yield = 0
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        await deliver(self, message)


async def drain_messages(self: Consumer, fetcher: Any) -> None:
    """Faust's fetch loop (``Consumer._drain_messages``) with :func:`deliver`."""
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    fetching = "FETCHING"
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            self.diag.set_flag(fetching)
            messages = getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                await deliver_all(self, messages)
                self.diag.unset_flag(fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            return
        raise
    except Exception as exc:
        logger.exception("Drain messages raised: %r", exc)
        raise
    finally:
        self.diag.unset_flag(fetching)


PATCH = Patch("no task per message", Signature(Consumer, "_drain_messages", ("self", "fetcher")),
              lambda original: drain_messages)
