"""How the counter store reaches Redis: one server or a Redis Cluster, and when a batch
of writes counts as durable.

Durable means: the batch's scripts ran on the master owning their keys and, with
``min_replicas`` > 0, the master's replicas acknowledged them (``WAIT``) before the
caller commits the Kafka offsets that caused them. Redis replicates asynchronously: a
master that answered and died before its replica copied the writes loses them when the
replica is promoted, and the markers that make the scripts idempotent vanish with them.

``WAIT`` counts the writes of *its own connection*: so it goes in the same pipeline as
the scripts, and on a Redis Cluster once per master, on that master's connection
(redis-py runs one node's share of a pipeline on one connection, in order). If a
script was redirected meanwhile (``MOVED`` during a failover or a resharding) it ran
elsewhere, unconfirmed: the owners of the keys are compared before and after, and any
change, or a ``WAIT`` answered by fewer replicas, raises :class:`ReplicasBehind` — an
outage the caller retries; the scripts are idempotent, so running them again is safe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

from stream_app.core.outages import ReplicasBehind
from stream_app.core.store.scripts import Script

SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
WAIT_MILLISECONDS = 2000
"""How long one ``WAIT`` may hold a batch for its replicas before the batch is retried."""

AnyRedis = Redis | RedisCluster


class ScriptCall(NamedTuple):
    script: Script
    keys: Sequence[str]
    args: Sequence[str]


def connect(url: str, cluster: bool) -> AnyRedis:
    """A client for ``url``: one server, or (``cluster``) the cluster ``url`` is a node
    of. Bounded: a Redis that stops answering fails the call after SOCKET_TIMEOUT instead
    of holding it forever; the caller retries through the outage. The cluster client
    retries nothing itself (``Retry(..., 0)``): a retry of its own would resend a
    pipeline's ``WAIT`` to whichever node it picks (see the module docstring)."""
    options: dict[str, Any] = {"decode_responses": True, "socket_timeout": SOCKET_TIMEOUT,
                               "socket_connect_timeout": CONNECT_TIMEOUT}
    if cluster:
        return RedisCluster.from_url(url, retry=Retry(NoBackoff(), 0), **options)
    return Redis.from_url(url, health_check_interval=30, **options)


async def remap(redis: AnyRedis) -> None:
    """After a connection error on a Redis Cluster: learn the slot map again. redis-py's
    cluster pipeline does not (a single command does), so a pipeline would keep going
    to a dead master long after a failover promoted its replica. Best effort: with the
    cluster away too, the caller's next retry comes back here."""
    if isinstance(redis, RedisCluster):
        with contextlib.suppress(Exception):  # still away: the retry will tell
            await redis.nodes_manager.initialize()


class Scripts:
    """Runs script calls in one pipelined round trip, loading a script a node does not
    know (a new node, a promoted replica) and waiting for replicas if asked to."""

    def __init__(self, redis: AnyRedis, min_replicas: int = 0) -> None:
        self.redis = redis
        self.min_replicas = min_replicas

    async def run(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """The replies of ``calls``, in order; raises :class:`ReplicasBehind` (or a
        connection error) when the writes are not known to be durable."""
        if not calls:
            return []
        try:
            try:
                return await self._run(calls)
            except NoScriptError:
                await self._load({c.script for c in calls})
                return await self._run(calls)
        except (ConnectionError, TimeoutError):
            await remap(self.redis)
            raise

    async def read(self, call: ScriptCall) -> Any:
        """The reply of one script that only reads: no pipeline, no ``WAIT``."""
        command: list[str | int] = ["EVALSHA", call.script.sha, len(call.keys), *call.keys,
                                    *call.args]
        try:
            return await self.redis.execute_command(*command)
        except NoScriptError:
            await self._load({call.script})
            return await self.redis.execute_command(*command)

    async def _run(self, calls: Sequence[ScriptCall]) -> list[Any]:
        owners = await self._owners(calls)
        async with self.redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys,
                                     *call.args)
            self._wait(pipe, owners)
            replies = await pipe.execute()
        acks = replies[len(calls):]
        if self.min_replicas:
            if any(int(n) < self.min_replicas for n in acks):
                raise ReplicasBehind(f"a write reached fewer than {self.min_replicas} "
                                     f"replica(s) in {WAIT_MILLISECONDS} ms")
            if [n.name for n in owners] != [n.name for n in await self._owners(calls)]:
                raise ReplicasBehind("the owner of a written key changed during the write")
        return list(replies[:len(calls)])

    async def _owners(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """On a cluster, waiting for replicas: the master owning each call's keys (they
        share one slot). Empty otherwise."""
        if not isinstance(self.redis, RedisCluster) or not self.min_replicas:
            return []
        if self.redis._initialize:  # after an error: map the slots before choosing nodes
            await self.redis.initialize()
        return [self.redis.get_node_from_key(c.keys[0]) for c in calls]

    def _wait(self, pipe: Any, owners: list[Any]) -> None:
        if not self.min_replicas:
            return
        if not isinstance(self.redis, RedisCluster):
            pipe.execute_command("WAIT", self.min_replicas, WAIT_MILLISECONDS)
        for node in {node.name: node for node in owners}.values():
            pipe.execute_command("WAIT", self.min_replicas, WAIT_MILLISECONDS,
                                 target_nodes=node)

    async def _load(self, scripts: set[Script]) -> None:
        for script in scripts:
            if isinstance(self.redis, RedisCluster):
                await self.redis.execute_command("SCRIPT LOAD", script.source,
                                                 target_nodes=RedisCluster.PRIMARIES)
            else:
                await self.redis.script_load(script.source)
