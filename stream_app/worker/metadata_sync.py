"""A guard on aiokafka's metadata synchronizer: started again whenever it is found dead.

Each aiokafka client runs one background task, ``AIOKafkaClient._md_synchronizer``, and
it alone resolves the future that ``force_metadata_update()`` returns; nothing restarts
the task if it ends. When it ends, every caller of that method waits forever. The group
coordinator calls it while holding its coordinator-lookup lock (after a failed
``FindCoordinator``, i.e. after any broker outage), so the heartbeat and every commit
queue behind that lock, Faust's fetch loop waits for the commit, and the worker stands
still with its process, its web server and its ``/healthz`` alive. This is the hang the
fault report saw after a broker SIGKILL; the task dump of one (docs/operations.md, "The hang after
a broker SIGKILL"):

    consumer thread: commit → GroupCoordinator.commit_offsets → ensure_coordinator_known
                     → waiting for _coordinator_lookup_lock
    consumer thread: _coordination_routine → ensure_coordinator_known (holds the lock)
                     → await client.force_metadata_update()     (never resolved)
    consumer thread: no _md_synchronizer task left
    main loop:       Faust's fetcher → maybe_wait_for_commit_to_finish

What ended the synchronizer there was uvloop's ``RuntimeError`` on a write to a connection
the broker had just closed, now a retried connection error
(``patches/closed_transport.py``); the guard covers whatever else might end it.

The guard (a worker timer, every second) looks at the synchronizer of the consumer's
client (in Faust's consumer thread) and of the producer's client (main loop). A dead one
is logged at ERROR with how it ended, counted
(``callback_stats_kafka_metadata_sync_restarts_total{client}``) and started again in its
own loop; the new task resolves the pending update, which releases the lock. The guard
reads two private attributes of aiokafka's client, checked at start-up (:data:`REQUIRES`).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.client import AIOKafkaClient

from stream_app.observe import metrics
from stream_app.patching import Signature

logger = logging.getLogger(__name__)

WATCH_SECONDS = 1.0
"""How often the synchronizers are looked at: a dead one stalls everything meanwhile."""

REQUIRES = (Signature(AIOKafkaClient, "_md_synchronizer", ("self",)),
            Signature(AIOKafkaClient, "force_metadata_update", ("self",)))
"""What the guard relies on in aiokafka (``_sync_task`` is checked by the unit test)."""


@dataclass(frozen=True)
class Watched:
    """One aiokafka client and the loop it lives in."""

    name: str
    client: Any
    loop: asyncio.AbstractEventLoop


class MetadataSyncGuard:
    """The timer: restart every watched client's synchronizer that is found dead.

    ``clients()`` names the clients to watch now; it returns none while the app starts
    or stops (a client being closed cancels its synchronizer on purpose)."""

    __name__ = "guard_metadata_sync"

    def __init__(self, clients: Callable[[], list[Watched]]) -> None:
        self.clients = clients

    async def __call__(self) -> None:
        for watched in self.clients():
            dead = getattr(watched.client, "_sync_task", None)
            if dead is None or not dead.done():
                continue
            logger.error("aiokafka's metadata synchronizer of the %s client had ended (%s); "
                         "starting it again", watched.name, how_it_ended(dead))
            metrics.METADATA_SYNC_RESTARTS.labels(watched.name).inc()
            watched.loop.call_soon_threadsafe(restart, watched.client, dead)


def restart(client: Any, dead: asyncio.Task[Any]) -> None:
    """In the client's own loop: a new synchronizer, unless one was started meanwhile or
    the client was closed (``close()`` sets the task to None)."""
    if client._sync_task is dead:
        client._sync_task = asyncio.get_running_loop().create_task(client._md_synchronizer())


def how_it_ended(task: asyncio.Task[Any]) -> str:
    """"cancelled", "returned", or the exception with its traceback."""
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is None:
        return "returned"
    return "".join(traceback.format_exception(exc)).strip()


def faust_clients(app: Any) -> list[Watched]:
    """The consumer's client (in Faust's consumer thread) and the producer's (main
    loop); none while the app is starting or stopping."""
    if app.should_stop or not app.consumer.started or app.consumer.should_stop:
        return []
    watched = []
    thread: Any = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    loop = getattr(thread, "thread_loop", None)
    if consumer is not None and loop is not None:
        watched.append(Watched("consumer", consumer._client, loop))
    producer = getattr(app.producer, "_producer", None)
    if producer is not None and not app.producer.should_stop:
        watched.append(Watched("producer", producer.client, asyncio.get_running_loop()))
    return watched
