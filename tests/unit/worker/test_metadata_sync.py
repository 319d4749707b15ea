"""The guard restarts a dead aiokafka metadata synchronizer, once, in its own loop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.client import AIOKafkaClient

from stream_app.patching import check_assigned
from stream_app.worker.metadata_sync import (
    REQUIRES,
    MetadataSyncGuard,
    Watched,
    faust_clients,
    how_it_ended,
)


def test_aiokafka_still_has_what_the_guard_reads() -> None:
    assert [s.problem() for s in REQUIRES] == [None, None]
    check_assigned("aiokafka", AIOKafkaClient, ("_sync_task",))


class FakeClient:
    """The two attributes of an aiokafka client the guard touches."""

    def __init__(self) -> None:
        self.synced = asyncio.Event()
        self._sync_task: asyncio.Task[Any] | None = None

    async def _md_synchronizer(self) -> None:
        self.synced.set()
        await asyncio.sleep(3600)


async def died() -> None:
    raise ValueError("boom in update_metadata")


async def test_a_dead_synchronizer_is_logged_with_its_exception_and_started_again(
        caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient()
    client._sync_task = dead = asyncio.create_task(died())
    await asyncio.gather(dead, return_exceptions=True)
    guard = MetadataSyncGuard(lambda: [Watched("consumer", client, asyncio.get_running_loop())])
    await guard()
    await asyncio.wait_for(client.synced.wait(), 5)
    assert client._sync_task is not dead and not client._sync_task.done()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "consumer client" in errors[0]
    assert "ValueError: boom in update_metadata" in errors[0]
    await guard()  # alive now: nothing more
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    client._sync_task.cancel()


async def test_a_closed_or_already_restarted_client_is_left_alone() -> None:
    client = FakeClient()
    client._sync_task = dead = asyncio.create_task(died())
    await asyncio.gather(dead, return_exceptions=True)
    guard = MetadataSyncGuard(lambda: [Watched("producer", client, asyncio.get_running_loop())])
    await guard()
    client._sync_task = None  # closed before the restart ran in its loop
    await asyncio.sleep(0)
    assert client._sync_task is None and not client.synced.is_set()


async def test_how_a_task_ended() -> None:
    async def nothing() -> None:
        return None

    done = asyncio.create_task(nothing())
    await done
    cancelled = asyncio.create_task(asyncio.sleep(1))
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert (how_it_ended(done), how_it_ended(cancelled)) == ("returned", "cancelled")


def test_no_client_is_watched_while_the_app_starts_or_stops() -> None:
    consumer = SimpleNamespace(started=True, should_stop=False,
                               _thread=SimpleNamespace(_consumer=SimpleNamespace(_client="c"),
                                                       thread_loop="loop"))
    app = SimpleNamespace(should_stop=True, consumer=consumer,
                          producer=SimpleNamespace(_producer=None, should_stop=False))
    assert faust_clients(app) == []
    app.should_stop = False
    assert [(w.name, w.client, w.loop) for w in faust_clients(app)] == [("consumer", "c", "loop")]
    consumer.started = False
    assert faust_clients(app) == []
