"""The task dump follows awaits through coroutines and async generators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from stream_app.observe.taskdump import dump


async def _stuck_forever(event: asyncio.Event) -> None:
    await event.wait()


async def _source(event: asyncio.Event) -> AsyncIterator[int]:
    while True:
        await _stuck_forever(event)
        yield 1


async def _consumer(event: asyncio.Event) -> None:
    async for _ in _source(event):  # the generator lives on the value stack only
        pass


async def test_the_dump_reaches_the_innermost_wait_through_an_async_generator() -> None:
    event = asyncio.Event()
    task = asyncio.ensure_future(_consumer(event), )
    task.set_name("the-consumer")
    await asyncio.sleep(0.01)
    try:
        text = dump({"main": asyncio.get_running_loop()})
    finally:
        task.cancel()
    section = text.split("-- task the-consumer")[1].split("-- task")[0]
    names = [line.rsplit(" in ", 1)[-1] for line in section.splitlines()[1:]]
    assert names[:3] == ["_consumer", "_source", "_stuck_forever"], section
    assert "wait" in names


async def test_the_dump_covers_another_thread_loop() -> None:
    loop = asyncio.new_event_loop()
    try:
        text = dump({"main": asyncio.get_running_loop(), "other": loop})
    finally:
        loop.close()
    assert "== loop other: 0 tasks" in text and "== loop main:" in text
