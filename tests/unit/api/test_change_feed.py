"""The reader's answer cache never keeps an answer read across a change or a restart
of the subscription (``api/change_feed.py``)."""

from __future__ import annotations

import asyncio

from stream_app.api.change_feed import AnswerCache


async def test_a_read_across_a_notification_or_a_resubscription_is_not_kept() -> None:
    cache: AnswerCache[int] = AnswerCache()
    cache.clear(enabled=True)
    # "b" was never notified before: the resubscription alone must void its read.
    for env, interrupt in (("a", lambda: cache.changed("a")),
                           ("b", lambda: cache.clear(enabled=True))):
        gate = asyncio.Event()

        async def slow(gate: asyncio.Event = gate) -> int:
            await gate.wait()
            return 1

        reading = asyncio.create_task(cache.get(env, "q", slow))
        await asyncio.sleep(0)
        interrupt()
        gate.set()
        assert await reading == 1
        assert await cache.get(env, "q", lambda: asyncio.sleep(0, 2)) == 2, "not kept"


async def test_one_read_for_many_askers_then_served_until_a_change() -> None:
    cache: AnswerCache[int] = AnswerCache()
    cache.clear(enabled=True)
    reads = 0

    async def load() -> int:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return reads

    assert await asyncio.gather(*(cache.get("e", "q", load) for _ in range(50))) == [1] * 50
    assert await cache.get("e", "q", load) == 1 and reads == 1
    cache.changed("e")
    assert await cache.get("e", "q", load) == 2
    cache.clear(enabled=False)
    assert await cache.get("e", "q", load) == 3 and await cache.get("e", "q", load) == 4
