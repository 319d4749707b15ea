"""The distributed faults, on a cluster of the module's own: three KRaft brokers (the
worker's topics with three replicas, ``min.insync.replicas`` 2) and a Redis Cluster of
three masters with a replica each, the worker waiting for a replica before it commits
(``STREAM_APP_REDIS_MIN_REPLICAS=1``). Each run ends with every counter and outcome
record equal to the oracle on the topics and ``stream-app audit`` clean, with no manual
step. ``make faults`` runs them several times each (``benchmarks/faults.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.faults import FaultRun, run_fault
from tests.topology import Services, own_services

pytestmark = pytest.mark.integration

TOPIC_CONFIG = 1
"""DescribeConfigs' ``config_source`` of a value set on the topic (DYNAMIC_TOPIC_CONFIG)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Services]:
    with own_services(cluster=True) as services:
        yield services


def assert_exact(run: FaultRun) -> None:
    print(f"\n{run.line()}")
    assert run.exact, run.mismatches[:5] + run.notes + run.worker_errors
    assert run.missing_offsets == 0
    assert run.restarts["liveness"] == 0, "\n".join(
        ["recovered only by a liveness restart; the workers' errors:", *run.worker_errors])


async def test_one_of_three_brokers_sigkilled_under_traffic(cluster: Services,
                                                            tmp_path: Path) -> None:
    """Partition leaders move to the surviving brokers; acks=all with two in sync."""
    run = await run_fault("cluster-broker-sigkill", cluster, tmp_path, seed=11, seconds=15.0,
                          callbacks=300, outage=6.0, grace=3.0, settle_timeout=150.0,
                          hit_window=(0.2, 0.4))
    assert_exact(run)


async def test_a_redis_master_sigkilled_fails_over_to_its_replica(cluster: Services,
                                                                   tmp_path: Path) -> None:
    """The replica is promoted (node timeout 2 s); the old master rejoins as a replica.
    Nothing acked to Kafka was only on the dead master: each batch waited for a replica."""
    run = await run_fault("cluster-redis-master-sigkill", cluster, tmp_path, seed=12,
                          seconds=15.0, callbacks=300, outage=6.0, grace=3.0,
                          settle_timeout=150.0, hit_window=(0.2, 0.4))
    assert_exact(run)
    assert run.hit_at > 0
    roles = cluster.redis_roles()
    assert sorted(roles.values()) == ["master"] * 3 + ["slave"] * 3, roles


async def test_three_workers_one_killed_one_added(cluster: Services, tmp_path: Path) -> None:
    run = await run_fault("cluster-workers-3", cluster, tmp_path, seed=13, seconds=15.0,
                          callbacks=300, grace=3.0, settle_timeout=180.0,
                          hit_window=(0.2, 0.4))
    assert_exact(run)


async def test_the_topics_a_worker_creates_are_durable_on_three_brokers(
        cluster: Services) -> None:
    """Three replicas and min.insync.replicas 2: with acks=all a record is acknowledged
    only once two brokers have it, so one broker dying loses nothing."""
    import uuid

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from stream_app.core.kafka.topics import TopicNames, ensure_topics
    from stream_app.settings import Settings

    name = f"durable-{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap=cluster.kafka, app_id=name, replication_factor=3,
                        **{f"topic_{t}": f"{name}-{t}" for t in
                           ("outbound", "inbound", "config", "outcomes", "dlq")})
    await ensure_topics(settings)
    names = TopicNames.from_settings(settings)
    created = [*names.public, *names.copartitioned]
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka)
    await admin.start()
    try:
        described = await admin.describe_topics(created)
        replicas = {d["topic"]: {len(p["replicas"]) for p in d["partitions"]}
                    for d in described}
        assert replicas == {t: {3} for t in created}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)
                                                for t in created])
        # (name, value, read-only, source, …); source 1: set on the topic itself, not the
        # brokers' default (which is 2 on this cluster too)
        isr = {resource[3]: {c[0]: (c[1], c[3]) for c in resource[4]}["min.insync.replicas"]
               for response in configs for resource in response.resources}
        assert isr == {t: ("2", TOPIC_CONFIG) for t in created}
    finally:
        await admin.close()


async def test_live_streams_survive_a_redis_master_failover(cluster: Services) -> None:
    """The master of the environment's slot (its counters and its change channel) is
    SIGKILLed under an open live stream: the stream says Redis is away or keeps quiet,
    the reader resubscribes on the promoted replica, and a change after the failover is
    pushed. Never a stale cached answer meanwhile (the cache is off until resubscribed)."""
    import asyncio
    import time
    import uuid

    import orjson

    from stream_app.api.reader import READER
    from stream_app.core.store.counters import CounterStore, InboundWrite, retried
    from tests.conftest import Endpoints
    from tests.integration.http import http_client
    from tests.integration.test_live_ops import Events
    from tests.support import poll

    env = f"env-failover-{uuid.uuid4().hex[:6]}"
    endpoints = Endpoints(cluster.kafka, cluster.redis_url, "cluster",
                          redis_cluster=True)
    client = await http_client(endpoints, f"token-failover={env}")
    store = CounterStore.from_url(cluster.redis_url, 3600, cluster=True)
    query = {"start_date": "2030-01-01", "end_date": "2030-01-01"}
    headers = {"Authorization": "Bearer token-failover"}

    async def write(n: int) -> None:
        await retried(store.record_inbound, [InboundWrite(
            env, f"c-{uuid.uuid4().hex}", "received", 1893499200.0, "2030-01-01", "e",
            None, "cb") for _ in range(n)])

    try:
        reader = client.app[READER]
        await poll(lambda: asyncio.sleep(0, reader.feed.live), bool, what="subscribed")
        response = await client.get("/api/v1/callback-agents/stats/live", params=query,
                                    headers=headers)
        stream = Events(response)
        await stream.next()
        await write(1)
        assert orjson.loads((await stream.next())["data"])["data"][
            "total_callbacks_received"] == 1
        cluster.kill_redis_node(cluster.master_port_of(env))
        killed = time.monotonic()
        await write(1)  # retried until the replica is promoted
        while True:
            event = await stream.next(timeout=60)
            if orjson.loads(event["data"]).get("data", {}).get("total_callbacks_received") == 2:
                break
        print(f"\npushed {time.monotonic() - killed:.1f} s after the master's SIGKILL")
        await poll(lambda: asyncio.sleep(0, reader.feed.live), bool, timeout=60,
                   what="resubscribed on the new master")
        await write(1)
        event = await stream.next(timeout=10)
        assert orjson.loads(event["data"])["data"]["total_callbacks_received"] == 3
        response.close()
    finally:
        await client.close()
        await store.close()
        cluster.restart_redis_nodes()
