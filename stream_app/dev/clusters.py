"""Local clusters without Docker: a Kafka of several KRaft nodes and a Redis Cluster.

Each node is a process of :mod:`.services` (same jars, same ``redis-server``, pid and
log files per port in the same state directory), so ``status``, ``down`` and fault
injection know every node by its port.

- Kafka: ``brokers`` combined broker + controller nodes, one cluster id, formatted once
  with ``--initial-controllers`` naming every node; node ``i`` listens on
  ``port + 2i`` and its controller on ``port + 2i + 1``. Topics default to replication
  factor ``min(3, brokers)`` and ``min.insync.replicas`` one less (at least 1).
- Redis: ``masters`` masters with one replica each (``--cluster-enabled yes``) on
  ``port`` … ``port + 2·masters - 1``, joined by ``redis-cli --cluster create
  --cluster-replicas 1``; a node timeout of 2 s, so a dead master's replica is promoted
  within a few seconds.

Invariant, as for single services: ``up`` is idempotent (nodes that answer are left
alone; a cluster already formed is not created again).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from stream_app.dev.services import (
    KAFKA_CONFIG,
    REDIS_CONFIG,
    Layout,
    ServiceError,
    apt_install,
    fetch_kafka_jars,
    kafka_command,
    live_pid,
    port_open,
    run_java,
    spawn,
    stop,
    wait_for_port,
)

REDIS_NODE_TIMEOUT_MS = 2000
FORM_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class KafkaCluster:
    layout: Layout
    brokers: int = 3

    def node(self, i: int) -> Layout:
        """Node ``i`` (0-based) as a single-service layout: its pid, log and data files."""
        return replace(self.layout, kafka_port=self.layout.kafka_port + 2 * i)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.node(i).kafka_port}" for i in range(self.brokers))

    @property
    def replicas(self) -> int:
        return min(3, self.brokers)


@dataclass(frozen=True)
class RedisCluster:
    layout: Layout
    masters: int = 3

    def node(self, i: int) -> Layout:
        return replace(self.layout, redis_port=self.layout.redis_port + i)

    @property
    def nodes(self) -> int:
        return 2 * self.masters

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.layout.redis_port}/0"


# -- Kafka ----------------------------------------------------------------------------

def kafka_up(cluster: KafkaCluster) -> str:
    if all(port_open(cluster.node(i).kafka_port) for i in range(cluster.brokers)):
        return f"{cluster.brokers} brokers already answering ({cluster.bootstrap})"
    cluster.layout.state_dir.mkdir(parents=True, exist_ok=True)
    libs = fetch_kafka_jars(cluster.layout)
    classpath = f"{libs}/*"
    _format_kafka(cluster, classpath)
    for i in range(cluster.brokers):
        node = cluster.node(i)
        if not port_open(node.kafka_port):
            spawn(node, "kafka", kafka_command(classpath, _properties(cluster, i),
                                                 heap="512m"))
    for i in range(cluster.brokers):
        wait_for_port(cluster.node(i), "kafka", cluster.node(i).kafka_port)
    return (f"started Apache Kafka {cluster.layout.kafka_version}, {cluster.brokers} brokers "
            f"({cluster.bootstrap})")


def _format_kafka(cluster: KafkaCluster, classpath: str) -> None:
    """Format every node's log directory once: one cluster id, one directory id per
    node, every node named in ``--initial-controllers``."""
    dirs = [_data_dir(cluster, i) for i in range(cluster.brokers)]
    if all((d / "meta.properties").exists() for d in dirs):
        return
    cluster_id = run_java(classpath, "kafka.tools.StorageTool", "random-uuid").strip()
    directory_ids = [run_java(classpath, "kafka.tools.StorageTool", "random-uuid").strip()
                     for _ in dirs]
    controllers = ",".join(f"{i + 1}@127.0.0.1:{cluster.node(i).kafka_port + 1}:{d}"
                           for i, d in enumerate(directory_ids))
    for i, d in enumerate(dirs):
        if d.exists():
            shutil.rmtree(d)  # a half-formatted cluster: start it afresh
        run_java(classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
              "-c", str(_properties(cluster, i)), "--initial-controllers", controllers)


def _data_dir(cluster: KafkaCluster, i: int) -> Path:
    return cluster.layout.state_dir / f"kafka-{cluster.node(i).kafka_port}"


def _properties(cluster: KafkaCluster, i: int) -> Path:
    node = cluster.node(i)
    controllers = ",".join(f"127.0.0.1:{cluster.node(j).kafka_port + 1}"
                           for j in range(cluster.brokers))
    text = (KAFKA_CONFIG / "server-cluster.properties").read_text().format(
        node_id=i + 1, controllers=controllers, port=node.kafka_port,
        controller_port=node.kafka_port + 1, data_dir=_data_dir(cluster, i),
        replicas=cluster.replicas, min_isr=max(1, cluster.replicas - 1))
    path = node.state_dir / f"kafka-{node.kafka_port}.properties"
    path.write_text(text)
    return path


# -- Redis ----------------------------------------------------------------------------

def redis_up(cluster: RedisCluster) -> str:
    cluster.layout.state_dir.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("redis-server") or apt_install("redis-server", "redis-server")
    for i in range(cluster.nodes):
        node = cluster.node(i)
        if port_open(node.redis_port):
            continue
        data = node.state_dir / f"redis-cluster-{node.redis_port}"
        data.mkdir(parents=True, exist_ok=True)
        spawn(node, "redis", [
            binary, str(REDIS_CONFIG), "--port", str(node.redis_port), "--bind", "127.0.0.1",
            "--dir", str(data), "--cluster-enabled", "yes", "--cluster-config-file",
            "nodes.conf", "--cluster-node-timeout", str(REDIS_NODE_TIMEOUT_MS),
            "--daemonize", "no"])
    for i in range(cluster.nodes):
        wait_for_port(cluster.node(i), "redis", cluster.node(i).redis_port)
    if _cluster_ok(cluster.layout.redis_port) and _known_nodes(cluster) == cluster.nodes:
        return f"Redis Cluster already formed ({cluster.masters} masters, {cluster.url})"
    if _known_nodes(cluster) == 1:
        ports = [f"127.0.0.1:{cluster.node(i).redis_port}" for i in range(cluster.nodes)]
        _redis_cli("--cluster", "create", *ports, "--cluster-replicas", "1", "--cluster-yes")
    _wait_formed(cluster)
    return (f"started a Redis Cluster of {cluster.masters} masters and {cluster.masters} "
            f"replicas ({cluster.url})")


def _wait_formed(cluster: RedisCluster) -> None:
    deadline = time.monotonic() + FORM_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if (all(_cluster_ok(cluster.node(i).redis_port) for i in range(cluster.nodes))
                and _replicas_in_sync(cluster) == cluster.masters):
            return
        time.sleep(0.2)
    info = _redis_cli("-p", str(cluster.layout.redis_port), "cluster", "info")
    raise ServiceError(f"the Redis Cluster on {cluster.url} did not reach cluster_state:ok "
                       f"in {FORM_TIMEOUT_SECONDS:.0f} s:\n{info}")


def _replicas_in_sync(cluster: RedisCluster) -> int:
    """Replicas whose link to their master is up (``cluster_state:ok`` comes before the
    replicas have attached: a master killed then would have nobody to fail over to)."""
    synced = 0
    for i in range(cluster.nodes):
        try:
            info = _redis_cli("-p", str(cluster.node(i).redis_port), "info", "replication")
        except ServiceError:
            continue
        synced += "role:slave" in info and "master_link_status:up" in info
    return synced


def _cluster_ok(port: int) -> bool:
    try:
        return "cluster_state:ok" in _redis_cli("-p", str(port), "cluster", "info")
    except ServiceError:
        return False


def _known_nodes(cluster: RedisCluster) -> int:
    info = _redis_cli("-p", str(cluster.layout.redis_port), "cluster", "info")
    for line in info.splitlines():
        if line.startswith("cluster_known_nodes:"):
            return int(line.split(":")[1])
    return 0


def _redis_cli(*args: str) -> str:
    cli = shutil.which("redis-cli") or apt_install("redis-tools", "redis-cli")
    result = subprocess.run([cli, *args], capture_output=True, text=True, check=False,
                            timeout=120)
    if result.returncode != 0:
        raise ServiceError(f"redis-cli {' '.join(args[:3])} failed:\n"
                           f"{result.stdout}{result.stderr}")
    return result.stdout


# -- both -----------------------------------------------------------------------------

def nodes(kafka: KafkaCluster | None, redis: RedisCluster | None
          ) -> list[tuple[str, Layout, str, int]]:
    """(label, layout, service, port) of every node of the clusters given."""
    found = []
    if kafka:
        found += [(f"kafka-{i + 1}", kafka.node(i), "kafka", kafka.node(i).kafka_port)
                  for i in range(kafka.brokers)]
    if redis:
        found += [(f"redis-{i + 1}", redis.node(i), "redis", redis.node(i).redis_port)
                  for i in range(redis.nodes)]
    return found


def status(kafka: KafkaCluster | None, redis: RedisCluster | None) -> dict[str, str]:
    result = {}
    for label, node, name, port in nodes(kafka, redis):
        pid = live_pid(node, name)
        state = "up" if port_open(port) else "down"
        result[label] = f"{state} on 127.0.0.1:{port}" + (f" (pid {pid})" if pid else "")
    return result


def down(kafka: KafkaCluster | None, redis: RedisCluster | None) -> dict[str, str]:
    """Stop every node at once (a broker's controlled shutdown takes seconds each)."""
    every = nodes(kafka, redis)
    with ThreadPoolExecutor(max_workers=max(1, len(every))) as pool:
        stopped = pool.map(lambda n: stop(n[1], n[2]), every)
        return {n[0]: result for n, result in zip(every, stopped, strict=True)}
