"""The deployment files users copy: docker-compose's ``cluster`` profile and the
Kubernetes example in ``deploy/``, parsed and checked against the settings and the
endpoints the code really has (there is no Docker or Kubernetes here to run them)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from stream_app.settings import Settings
from tests.support import REPO


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())  # type: ignore[no-any-return]



def kubernetes() -> dict[str, dict[str, Any]]:
    documents = yaml.safe_load_all((REPO / "deploy/kubernetes.yaml").read_text())
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def unknown(names: set[str]) -> set[str]:
    return {n for n in names if n.removeprefix("STREAM_APP_").lower() not in Settings.model_fields}


def test_the_cluster_profile_has_three_brokers_of_one_kraft_quorum() -> None:
    services = compose()["services"]
    brokers = {n: s for n, s in services.items() if re.fullmatch(r"kafka-\d", n)}
    assert len(brokers) == 3 and all(s["profiles"] == ["cluster"] for s in brokers.values())
    envs = [s["environment"] for s in brokers.values()]
    assert len({e["CLUSTER_ID"] for e in envs}) == 1, "one cluster id"
    assert sorted(e["KAFKA_NODE_ID"] for e in envs) == [1, 2, 3]
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for name, env in zip(brokers, envs, strict=True):
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
    volumes = {v for s in brokers.values() for v in s["volumes"]}
    assert len(volumes) == 3, "a data volume each"


def test_the_cluster_profile_has_a_redis_cluster_with_a_replica_per_master() -> None:
    services = compose()["services"]
    nodes = {n: s for n, s in services.items() if re.fullmatch(r"redis-\d", n)}
    assert len(nodes) == 6
    for node in nodes.values():
        command = node["command"]
        assert node["profiles"] == ["cluster"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert "--appendonly" in command
    assert len({v for s in nodes.values() for v in s["volumes"]}) == 6
    init = services["redis-cluster-init"]
    script = " ".join(init["command"])
    assert "--cluster create --cluster-replicas 1" in script
    assert "for n in 1 2 3 4 5 6" in script and "getent hosts redis-$$n" in script
    assert script.startswith("redis-cli -h redis-1 cluster info | grep -q cluster_state:ok ||"), \
        "formed once: a restart of the profile leaves the cluster as it is"
    assert set(init["depends_on"]) == set(nodes)


def test_the_cluster_profile_s_workers_and_reader_use_the_cluster() -> None:
    services = compose()["services"]
    for name in ("worker-cluster", "reader-cluster"):
        service = services[name]
        env = service["environment"]
        assert service["profiles"] == ["cluster"]
        assert env["STREAM_APP_KAFKA_BOOTSTRAP"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        assert env["STREAM_APP_REDIS_URL"].startswith("redis://redis-1:")
        assert env["STREAM_APP_REDIS_CLUSTER"] == "true"
        assert env["STREAM_APP_REDIS_MIN_REPLICAS"] >= 1
        assert env["STREAM_APP_REPLICATION_FACTOR"] == 3
        assert not unknown(set(env)), unknown(set(env))
        wants = service["depends_on"]
        assert wants["redis-cluster-init"] == {"condition": "service_completed_successfully"}
    worker = services["worker-cluster"]
    assert worker["volumes"] == [worker["environment"]["STREAM_APP_DATA_DIR"]], \
        "an anonymous volume: each scaled worker has state of its own"
    assert {"kafka-1", "kafka-2", "kafka-3"} <= set(worker["depends_on"])
    for single in ("kafka", "redis", "worker", "reader"):
        assert "profiles" not in services[single], "`docker compose up` is unchanged"


def test_the_kubernetes_example_runs_workers_with_state_and_probed_readers() -> None:
    docs = kubernetes()
    config = docs["ConfigMap/callback-stats"]["data"]
    assert not unknown(set(config)), unknown(set(config))
    worker = docs["StatefulSet/callback-stats-worker"]["spec"]
    container = worker["template"]["spec"]["containers"][0]
    assert container["command"] == ["stream-app", "worker"]
    data_dir = {e["name"]: e["value"] for e in container["env"]}["STREAM_APP_DATA_DIR"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = [c["metadata"]["name"] for c in worker["volumeClaimTemplates"]]
    assert mounts == {claims[0]: data_dir}, "the RocksDB state on the pod's own volume"
    port = Settings().worker_web_port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert docs["Service/callback-stats-worker"]["spec"]["clusterIP"] == "None"
    assert worker["serviceName"] == "callback-stats-worker"
    reader = docs["Deployment/callback-stats-reader"]["spec"]["template"]["spec"]
    rc = reader["containers"][0]
    assert rc["command"] == ["stream-app", "reader"]
    reader_port = int(config["STREAM_APP_READER_PORT"])
    assert rc["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": reader_port}
    assert rc["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": reader_port}
    assert {"secretRef": {"name": "callback-stats-tokens"}} in rc["envFrom"], \
        "tokens from a Secret, never in the ConfigMap"
    assert "STREAM_APP_API_TOKENS" not in config
    assert docs["Service/callback-stats-reader"]["spec"]["ports"][0]["targetPort"] == reader_port
