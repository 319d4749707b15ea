"""A batch counts as durable only once a replica has it (STREAM_APP_REDIS_MIN_REPLICAS).

On a Redis Cluster of its own (three masters, a replica each): with the replica of the
environment's master frozen (SIGSTOP), a write waiting for one replica is refused
(``ReplicasBehind``, which the worker retries and never commits past), while the same
write without the wait succeeds; once the replica runs again the write goes through.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.cluster import RedisCluster as SyncRedisCluster

from stream_app.core.outages import ReplicasBehind
from stream_app.core.store.counters import CounterStore, InboundWrite
from stream_app.core.store.layout import stats_key
from stream_app.dev import clusters, services
from tests.support import poll
from tests.topology import free_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[clusters.RedisCluster]:
    with tempfile.TemporaryDirectory(prefix="replicas-") as scratch:
        default = services.Layout.default()
        layout = services.Layout(Path(scratch), default.cache_dir, 0, free_run(6, bus=True))
        own = clusters.RedisCluster(layout)
        clusters.redis_up(own)
        try:
            yield own
        finally:
            clusters.down(None, own)


def replica_pid(cluster: clusters.RedisCluster, environment: str) -> int:
    """The pid of the replica of the master owning ``environment``'s slot (redis-py
    keeps replicas out of its node cache unless it reads from them: ask each node)."""
    client = SyncRedisCluster.from_url(cluster.url)
    try:
        master_port = client.get_node_from_key(stats_key(environment, "x")).port
    finally:
        client.close()
    for i in range(cluster.nodes):
        node = cluster.node(i)
        info = Redis(port=node.redis_port).info("replication")
        if info["role"] == "slave" and info["master_port"] == master_port:
            return int(node.pid_file("redis").read_text())
    raise AssertionError(f"no replica of the master on {master_port}")


async def test_a_write_waits_for_a_replica(cluster: clusters.RedisCluster) -> None:
    env = f"env-{uuid.uuid4().hex[:10]}"
    durable = CounterStore.from_url(cluster.url, 3600, cluster=True, min_replicas=1)
    hasty = CounterStore.from_url(cluster.url, 3600, cluster=True)

    def write(n: int) -> list[InboundWrite]:
        return [InboundWrite(env, f"call-{n}", "received", 1_700_000_000.0, "2023-11-14",
                             f"ev-{n}")]

    try:
        assert len(await durable.record_inbound(write(1))) == 1
        frozen = replica_pid(cluster, env)
        services.os.kill(frozen, signal.SIGSTOP)
        try:
            with pytest.raises(ReplicasBehind):
                await durable.record_inbound(write(2))
            assert len(await hasty.record_inbound(write(3))) == 1, "no wait: no refusal"
        finally:
            services.os.kill(frozen, signal.SIGCONT)
        assert len(await durable.record_inbound(write(2))) == 1
        assert (await durable.read_stats(env, ["2023-11-14"])).received == 3
    finally:
        await durable.close()
        await hasty.close()


async def test_a_client_that_knows_only_a_dead_node_waits_for_it(
        cluster: clusters.RedisCluster) -> None:
    """A worker's first Redis call after the URL's node died: its client knows no other
    node yet, so it cannot learn the cluster. That is an outage (retried until the node
    is back), never an error that dead-letters the batch (seen in the fault matrix)."""
    from stream_app.core.store.counters import retried
    from stream_app.observe import metrics

    def retries() -> float:
        return metrics.OUTAGE_RETRIES.labels("redis")._value.get()  # type: ignore[attr-defined,no-any-return]

    env = f"env-{uuid.uuid4().hex[:10]}"
    store = CounterStore.from_url(cluster.url, 3600, cluster=True)  # not connected yet
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, services.send_signal, cluster.node(0), "redis",
                               signal.SIGKILL)
    before = retries()
    try:
        writing = asyncio.create_task(retried(store.record_inbound, [InboundWrite(
            env, "call-1", "received", 1_700_000_000.0, "2023-11-14", "ev-1")]))
        await poll(lambda: asyncio.sleep(0, retries()), lambda n: n > before + 2,
                   timeout=30, what="the write retried as an outage")
        assert not writing.done(), writing
        await loop.run_in_executor(None, clusters.redis_up, cluster)
        assert len(await asyncio.wait_for(writing, 60)) == 1
        assert (await store.read_stats(env, ["2023-11-14"])).received == 1
    finally:
        await store.close()
