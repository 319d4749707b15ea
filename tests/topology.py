"""Kafka and Redis of a fault run's own, on free ports in a scratch directory: one broker
and one Redis, or (``cluster``) three brokers and a Redis Cluster of three masters with a
replica each. Killing them disturbs nothing else on the machine."""

from __future__ import annotations

import os
import random
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from redis.cluster import RedisCluster as SyncRedisCluster

from stream_app.core.store.layout import stats_key
from stream_app.dev import clusters, services


@dataclass
class Services:
    layout: services.Layout
    kafka_cluster: clusters.KafkaCluster | None = None
    redis_cluster: clusters.RedisCluster | None = None

    @property
    def kafka(self) -> str:
        if self.kafka_cluster:
            return self.kafka_cluster.bootstrap
        return f"127.0.0.1:{self.layout.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.layout.redis_port}/0"

    def worker_settings(self) -> dict[str, Any]:
        """A worker on these services: on the cluster, topics with three replicas, and a
        batch acked once its Redis writes reached a replica."""
        if not self.kafka_cluster:
            return {}
        return {"replication_factor": 3, "redis_cluster": "true", "redis_min_replicas": 1}

    def kill(self, name: str, sig: int) -> None:
        services.send_signal(self.layout, name, sig)

    def start(self, name: str) -> None:
        services.start(self.layout, name)

    def freeze(self, name: str, sig: int) -> None:
        """SIGSTOP / SIGCONT a service (no waiting: its port stays open)."""
        pid = int(self.layout.pid_file(name).read_text())
        os.killpg(pid, sig)

    # -- the cluster's nodes ----------------------------------------------------------

    def kill_broker(self, i: int, sig: int = signal.SIGKILL) -> None:
        assert self.kafka_cluster
        services.send_signal(self.kafka_cluster.node(i), "kafka", sig)

    def restart_brokers(self) -> None:
        assert self.kafka_cluster
        clusters.kafka_up(self.kafka_cluster)

    def master_port_of(self, environment_id: str) -> int:
        """The port of the Redis master holding ``environment_id``'s slot now."""
        client = SyncRedisCluster.from_url(self.redis_url)
        try:
            return int(client.get_node_from_key(stats_key(environment_id, "x")).port)
        finally:
            client.close()

    def kill_redis_node(self, port: int, sig: int = signal.SIGKILL) -> None:
        assert self.redis_cluster
        services.send_signal(self.redis_cluster.node(port - self.layout.redis_port),
                             "redis", sig)

    def redis_roles(self) -> dict[int, str]:
        """Each Redis Cluster node's port and role (``master`` or ``slave``)."""
        assert self.redis_cluster
        ports = [self.redis_cluster.node(i).redis_port for i in range(self.redis_cluster.nodes)]
        return {p: str(Redis(port=p).info("replication")["role"]) for p in ports}

    def restart_redis_nodes(self) -> None:
        """Start the nodes that are down: each rejoins from its nodes.conf, a master
        that was failed over as a replica of its promoted replica."""
        assert self.redis_cluster
        clusters.redis_up(self.redis_cluster)


EPHEMERAL_START = 32_768
"""Linux's default ``ip_local_port_range`` starts here."""


def free_run(length: int, bus: bool = False, avoid: range = range(0)) -> int:
    """The first of ``length`` consecutive free ports (and, for Redis Cluster, their bus
    ports, 10000 above), all below the kernel's ephemeral range (32768 on): a port
    there can be taken by any outgoing connection between this check and the bind (a
    cluster node of the fault matrix once failed to start so)."""
    top = EPHEMERAL_START - length - (10_000 if bus else 0)
    while True:
        base = random.randrange(10_000, top)
        ports = range(base, base + length)
        taken = [p for p in ports if p in avoid or (bus and p + 10_000 in avoid)]
        if not taken and not any(services.port_open(p) or
                                 (bus and services.port_open(p + 10_000)) for p in ports):
            return base


@contextmanager
def own_services(root: Path | None = None, cluster: bool = False) -> Iterator[Services]:
    """Kafka and Redis started for the caller alone, stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="faults-", dir=root) as scratch:
        default = services.Layout.default()
        kafka = free_run(6 if cluster else 2)
        kafka_ports = range(kafka, kafka + 6)
        redis = (free_run(6, bus=True, avoid=kafka_ports) if cluster else
                 free_run(1, avoid=kafka_ports))
        layout = services.Layout(Path(scratch), default.cache_dir, kafka, redis)
        if not cluster:
            services.up(layout)
            try:
                yield Services(layout)
            finally:
                services.down(layout)
            return
        own = Services(layout, clusters.KafkaCluster(layout, 3), clusters.RedisCluster(layout))
        try:
            clusters.redis_up(own.redis_cluster)  # type: ignore[arg-type]
            clusters.kafka_up(own.kafka_cluster)  # type: ignore[arg-type]
            yield own
        finally:
            clusters.down(own.kafka_cluster, own.redis_cluster)
