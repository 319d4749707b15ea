"""Patch: no task per message. Each test fails without the code it covers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer
from mode.utils.queues import FlowControlEvent

from stream_app.worker import patch_registry
from stream_app.worker.patches import drain
from stream_app.worker.patches.inbox import INBOXES, inbox_for
from tests.unit.worker.doubles import consumer_double, message

patch_registry.install()


# -- 5. no task per message ----------------------------------------------------------------

def drain_double(callback: Any, wait_first: Any) -> Any:
    """A consumer whose one fetch returns three messages, then stops."""
    stopped, fetcher_stopped = asyncio.Event(), asyncio.Event()
    messages = [message(offset) for offset in range(3)]

    async def batch() -> Any:
        for m in messages:
            yield m.tp, m
        stopped.set()

    async def no_sleep(_: float) -> None:
        return None

    double = consumer_double()
    double.__dict__.update(
        getmany=lambda timeout: batch(), _stopped=stopped, should_stop=False,
        diag=SimpleNamespace(set_flag=lambda f: None, unset_flag=lambda f: None),
        sleep=no_sleep, _commit_every=None, suspend_flow=asyncio.Event(), callback=callback,
        wait_first=wait_first, consumer_stopped_errors=(), _read_offset=defaultdict(lambda: None),
        transport=SimpleNamespace(app=SimpleNamespace(should_stop=False)),
        log=SimpleNamespace(exception=lambda *args: None, dev=lambda *args: None))
    double.app.topics = SimpleNamespace(acks_enabled_for=lambda topic: True)
    return double, SimpleNamespace(_stopped=fetcher_stopped), messages


def test_a_message_delivered_without_waiting_costs_no_task() -> None:
    delivered: list[Any] = []

    async def callback(m: Any) -> None:
        delivered.append(m)

    async def wait_first(*coros: Any) -> None:
        raise AssertionError("wait_first (two tasks) for a delivery that never waits")

    async def run() -> None:
        double, fetcher, messages = drain_double(callback, wait_first)
        await Consumer._drain_messages(double, fetcher)
        assert delivered == messages

    asyncio.run(run())


def test_a_delivery_that_waits_finishes_under_wait_first_and_stops_on_suspension() -> None:
    async def run() -> None:
        room = asyncio.get_running_loop().create_future()
        delivered: list[int] = []
        cancelled: list[int] = []

        async def callback(m: Any) -> None:
            try:
                await room  # a full stream buffer
            except asyncio.CancelledError:
                cancelled.append(m.offset)
                raise
            delivered.append(m.offset)

        double, _, _ = drain_double(callback, None)
        double.wait_first = lambda *coros: _first(*coros)
        waiting = asyncio.ensure_future(drain.deliver(double, message(7)))
        await asyncio.sleep(0)
        room.set_result(None)
        await waiting
        assert delivered == [7]

        room = asyncio.get_running_loop().create_future()
        waiting = asyncio.ensure_future(drain.deliver(double, message(8)))
        await asyncio.sleep(0)
        double.suspend_flow.set()  # a rebalance starts
        await waiting
        assert cancelled == [8] and delivered == [7]
        await drain.deliver(double, message(9))
        assert delivered == [7], "nothing is delivered while the flow is suspended"

    asyncio.run(run())


async def _first(*coros: Any) -> None:
    """mode's Service.wait_first: the first to finish wins, the others are cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


# -- the agents' inboxes -------------------------------------------------------------------

def test_an_agent_topic_s_message_goes_to_its_inbox_not_through_the_conductor() -> None:
    async def callback(m: Any) -> None:
        raise AssertionError("the conductor's per-message path for an agent's topic")

    async def run() -> None:
        double, fetcher, messages = drain_double(callback, None)
        double.app.flow_control = FlowControlEvent(initially_suspended=False)
        inbox = inbox_for("in", double.app.flow_control)
        try:
            await Consumer._drain_messages(double, fetcher)
            assert list(inbox.items) == messages
            double.app.flow_control.clear()  # what Faust does on a revocation
            assert list(inbox.items) == []
        finally:
            INBOXES.pop("in")

    asyncio.run(run())


def test_a_full_inbox_holds_the_fetch_loop_and_a_rebalance_releases_it() -> None:
    async def run() -> None:
        double, _, _ = drain_double(None, None)
        double.wait_first = lambda *coros: _first(*coros)
        double.app.flow_control = FlowControlEvent(initially_suspended=False)
        inbox = inbox_for("in", double.app.flow_control)
        inbox.max_size = 1
        try:
            await drain.deliver(double, message(1))
            waiting = asyncio.ensure_future(drain.deliver(double, message(2)))
            await asyncio.sleep(0.01)
            assert not waiting.done() and [m.offset for m in inbox.items] == [1]
            assert [m.offset for m in await inbox.take(10, 0.0)] == [1]
            await asyncio.wait_for(waiting, 1)
            assert [m.offset for m in inbox.items] == [2], "room made: the message goes in"
            waiting = asyncio.ensure_future(drain.deliver(double, message(3)))
            await asyncio.sleep(0.01)
            double.suspend_flow.set()  # a rebalance starts
            await asyncio.wait_for(waiting, 1)
            assert [m.offset for m in inbox.items] == [2], "not delivered once suspended"
        finally:
            INBOXES.pop("in")

    asyncio.run(run())


def test_an_inbox_takes_nothing_while_the_tables_recover() -> None:
    async def run() -> None:
        double, _, _ = drain_double(None, None)
        flow = double.app.flow_control = FlowControlEvent(initially_suspended=False)
        inbox = inbox_for("in", flow)
        try:
            flow.suspend()  # Faust: from a revocation until the tables are recovered
            waiting = asyncio.ensure_future(drain.deliver(double, message(5)))
            await asyncio.sleep(0.01)
            assert not waiting.done() and not inbox.items
            flow.resume()
            await asyncio.wait_for(waiting, 1)
            assert [m.offset for m in inbox.items] == [5]
        finally:
            INBOXES.pop("in")

    asyncio.run(run())
