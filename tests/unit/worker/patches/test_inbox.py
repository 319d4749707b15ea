"""An agent's inbox: batches in fetch order, bounded, cleared on revocation."""

from __future__ import annotations

import asyncio
import time

from stream_app.worker.patches.inbox import Inbox


async def test_a_full_batch_is_taken_at_once_and_the_rest_stays_in_order() -> None:
    inbox = Inbox("t")
    for i in range(5):
        assert inbox.put(i)
    began = time.monotonic()
    assert await inbox.take(3, 10.0) == [0, 1, 2]
    assert time.monotonic() - began < 1.0, "did not wait for within: the batch was full"
    assert await inbox.take(3, 0.0) == [3, 4]


async def test_a_short_batch_waits_within_since_the_last_take_or_until_it_is_full() -> None:
    inbox = Inbox("t")
    inbox.put(0)
    assert await inbox.take(3, 10.0) == [0], "long since the last take: no wait"
    inbox.put(1)
    began = time.monotonic()
    assert await inbox.take(3, 0.05) == [1]
    assert time.monotonic() - began >= 0.04, "within since the last take"
    inbox.put(1)
    taking = asyncio.ensure_future(inbox.take(2, 10.0))
    await asyncio.sleep(0.01)
    assert not taking.done()
    inbox.put(2)
    assert await asyncio.wait_for(taking, 1.0) == [1, 2]


async def test_an_empty_inbox_waits_for_its_first_message() -> None:
    inbox = Inbox("t")
    taking = asyncio.ensure_future(inbox.take(10, 0.0))
    await asyncio.sleep(0.02)
    assert not taking.done()
    inbox.put("m")
    assert await asyncio.wait_for(taking, 1.0) == ["m"]


async def test_a_full_inbox_refuses_until_a_take_or_a_clear_makes_room() -> None:
    inbox = Inbox("t", max_size=2)
    assert inbox.put(0) and inbox.put(1) and not inbox.put(2)
    assert not inbox.writable.is_set()
    assert await inbox.take(1, 0.0) == [0]
    await asyncio.wait_for(inbox.space(), 1.0)
    assert inbox.put(2) and not inbox.put(3)
    inbox.clear()
    assert not inbox.items and inbox.writable.is_set()
