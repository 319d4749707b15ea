"""Where the nodes of a local cluster live (ports, files, configuration), and that
``status``/``down`` find every one of them. Starting real clusters is integration
ground (tests/integration/test_cluster_faults.py, test_replicas.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stream_app.dev import clusters, services


def test_kafka_nodes_take_every_second_port_with_their_controller_between(
        tmp_path: Path) -> None:
    cluster = clusters.KafkaCluster(services.Layout(tmp_path, tmp_path, kafka_port=19092), 3)
    assert [cluster.node(i).kafka_port for i in range(3)] == [19092, 19094, 19096]
    assert cluster.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert cluster.replicas == 3
    assert clusters.KafkaCluster(cluster.layout, 2).replicas == 2
    assert clusters.KafkaCluster(cluster.layout, 5).replicas == 3


def test_a_kafka_node_s_properties_name_the_whole_quorum_and_durable_defaults(
        tmp_path: Path) -> None:
    cluster = clusters.KafkaCluster(services.Layout(tmp_path, tmp_path, kafka_port=19092), 3)
    text = clusters._properties(cluster, 1).read_text()
    props = dict(line.split("=", 1) for line in text.splitlines()
                 if "=" in line and not line.startswith("#"))
    assert props["node.id"] == "2"
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.bootstrap.servers"] == \
        "127.0.0.1:19093,127.0.0.1:19095,127.0.0.1:19097"
    assert "19094" in props["listeners"] and "19095" in props["listeners"]
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["offsets.topic.replication.factor"] == "3"
    assert Path(props["log.dirs"]) == tmp_path / "kafka-19094", "a data directory per node"


def test_redis_cluster_nodes_are_consecutive_ports_and_the_url_names_the_first(
        tmp_path: Path) -> None:
    cluster = clusters.RedisCluster(services.Layout(tmp_path, tmp_path, redis_port=17000))
    assert cluster.nodes == 6
    assert [cluster.node(i).redis_port for i in range(6)] == list(range(17000, 17006))
    assert cluster.url == "redis://127.0.0.1:17000/0"
    labels = [label for label, *_ in clusters.nodes(None, cluster)]
    assert labels == [f"redis-{i}" for i in range(1, 7)]


def test_status_and_down_know_every_node_by_its_pid_file(tmp_path: Path) -> None:
    layout = services.Layout(tmp_path, tmp_path, kafka_port=19092, redis_port=17000)
    kafka = clusters.KafkaCluster(layout, 3)
    redis = clusters.RedisCluster(layout)
    for _, node, name, _ in clusters.nodes(kafka, redis):
        node.pid_file(name).parent.mkdir(parents=True, exist_ok=True)
        node.pid_file(name).write_text("999999")  # long gone
    found = sorted((name, node.port(name)) for name, node in services.recorded(layout))
    assert found == sorted([("kafka", p) for p in (19092, 19094, 19096)]
                           + [("redis", p) for p in range(17000, 17006)])
    stopped = services.down(layout, everything=True)
    assert len(stopped) == 9
    assert all("not running" in state for state in stopped.values())
    assert not list(layout.state_dir.glob("*.pid")), "stale pid files removed"


def test_the_services_command_takes_cluster_options() -> None:
    run = subprocess.run([sys.executable, "-m", "stream_app", "services", "--help"],
                         capture_output=True, text=True, check=True)
    assert "--redis-cluster" in run.stdout and "--kafka-brokers" in run.stdout


def test_down_with_cluster_options_stops_only_the_service_they_name(tmp_path: Path) -> None:
    """`down --redis-cluster --redis-port P` stops that Redis Cluster, not Kafka."""
    layout = services.Layout(tmp_path, tmp_path, kafka_port=9092, redis_port=17000)
    for _, node, name, _ in clusters.nodes(None, clusters.RedisCluster(layout)):
        node.pid_file(name).write_text("999999")
    layout.pid_file("kafka").write_text("999999")
    run = subprocess.run([sys.executable, "-m", "stream_app", "services", "down",
                          "--redis-cluster", "--redis-port", "17000"], capture_output=True,
                         text=True, check=True, env={"STREAM_APP_SERVICES_DIR": str(tmp_path),
                                                     "PATH": "/usr/bin:/bin"})
    stopped = [line.split(":")[0] for line in run.stdout.splitlines()]
    assert stopped == [f"redis-{i}" for i in range(1, 7)], run.stdout
    assert layout.pid_file("kafka").exists(), "Kafka's pid file untouched"
