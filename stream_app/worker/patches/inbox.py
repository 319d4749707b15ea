"""The agents' inboxes: their topics' messages handed over in batches, not one by one.

Faust delivers each message through its conductor (a lock, flow-control waits, an
``Event`` per message), a channel queue, the stream iterator and ``noack_take``'s
buffer task, and acks it back through the event. The worker's agents only ever want
batches of messages in fetch order, so for their topics :func:`.drain.deliver` puts the
message in its topic's :class:`Inbox` instead, and the agent takes a batch and acks
each message straight to the consumer (``Consumer.ack``, with the stale-ack patch in
front). That is the same consumer, subscription, assignment and commit as before; only
the per-message path between the fetch and the agent is gone.

Invariants: a message is in at most one inbox, once (the fetch loop delivers it once);
an inbox holds messages of the current assignment only, since Faust clears the queues it
manages (``flow_control.clear()``) when partitions are revoked, and every inbox is one
of them; messages fetched before a rebalance but taken after it are dropped by the
agent's admission (their generation is not the consumer's).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

MAX_SIZE = 4096
"""Messages an inbox holds before the fetch loop waits (Faust's stream buffer size)."""


class Inbox:
    """A bounded FIFO of one topic's messages, put by the fetch loop, taken by one agent."""

    def __init__(self, topic: str, max_size: int = MAX_SIZE) -> None:
        self.topic = topic
        self.max_size = max_size
        self.items: deque[Any] = deque()
        self.readable = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self.wanted = max_size
        """The size the waiting :meth:`take` wants (it is woken when it is reached)."""
        self.enough = asyncio.Event()
        self.last_take = 0.0
        self.flow_control: Any = None
        """The Faust flow control that clears this inbox on revocation."""

    def put(self, message: Any) -> bool:
        """Add ``message``; False (not added) if the inbox is full."""
        items = self.items
        if len(items) >= self.max_size:
            self.writable.clear()
            return False
        items.append(message)
        if len(items) == 1:
            self.readable.set()
        if len(items) >= self.wanted:
            self.enough.set()
        return True

    async def space(self) -> None:
        """Until the inbox can take a message again."""
        await self.writable.wait()

    async def take(self, most: int, within: float) -> list[Any]:
        """Up to ``most`` messages, oldest first: as soon as there are ``most``, else
        once ``within`` seconds have passed since the last take returned (as Faust's
        ``take``, whose timer runs from its last yield), and never an empty batch."""
        while not self.items:
            self.readable.clear()
            await self.readable.wait()
        left = self.last_take + within - time.monotonic()
        if len(self.items) < most and left > 0:
            self.wanted = most
            self.enough.clear()
            try:
                await asyncio.wait_for(self.enough.wait(), left)
            except TimeoutError:
                pass
            finally:
                self.wanted = self.max_size
        items = self.items
        batch = [items.popleft() for _ in range(min(most, len(items)))]
        self.writable.set()
        self.last_take = time.monotonic()
        return batch

    def clear(self) -> None:
        """Drop every message held (partitions revoked); a waiting put goes on."""
        self.items.clear()
        self.writable.set()


INBOXES: dict[str, Inbox] = {}
"""Topic name -> its agent's inbox (filled by the worker's topology, read by ``deliver``)."""


def inbox_for(topic: str, flow_control: Any) -> Inbox:
    """The inbox of ``topic``, created once and cleared by Faust on every revocation."""
    inbox = INBOXES.get(topic)
    if inbox is None or inbox.flow_control is not flow_control:  # another app (tests)
        inbox = INBOXES[topic] = Inbox(topic)
        inbox.flow_control = flow_control
        flow_control.manage_queue(inbox)
    return inbox
