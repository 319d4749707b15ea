"""Real Kafka and Redis, started once per test session.

Order of preference:
1. ``STREAM_APP_KAFKA_BOOTSTRAP`` / ``STREAM_APP_REDIS_URL`` when set (an already
   running broker wins);
2. testcontainers, when a Docker daemon answers;
3. the project's local services (``stream-app services up``: Apache Kafka from Maven
   Central run with java, Debian's redis-server).
Integration tests never skip: when no broker can be had they fail and say how to get one.

``STREAM_APP_TEST_REDIS_CLUSTER=1`` runs the same tests on a Redis Cluster of three
masters and three replicas (``stream-app services up --redis-cluster`` on ports
17000-17005): workers, readers and stores then use redis-py's ``RedisCluster``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from redis.asyncio import Redis, RedisCluster

from stream_app.core.store.counters import CounterStore
from stream_app.dev import clusters, services
from tests.support import PUBLISHED, WorkerProcess, published_problems, worker_env

HOW_TO = ("start one with `stream-app services up` (needs java, mvn and apt), or point "
          "STREAM_APP_KAFKA_BOOTSTRAP / STREAM_APP_REDIS_URL at running ones")


CLUSTER_PORT = 17000


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    redis_url: str
    origin: str
    redis_cluster: bool = False

    def store(self, ttl: int = 3600) -> CounterStore:
        return CounterStore.from_url(self.redis_url, ttl, self.redis_cluster)

    def redis_client(self) -> Redis | RedisCluster:
        if self.redis_cluster:
            return RedisCluster.from_url(self.redis_url, decode_responses=True)
        return Redis.from_url(self.redis_url, decode_responses=True)

    def worker_settings(self) -> dict[str, str]:
        """What a worker or reader needs besides Kafka and Redis's URL."""
        return {"REDIS_CLUSTER": "true"} if self.redis_cluster else {}


def redis_cluster_wanted() -> bool:
    return os.environ.get("STREAM_APP_TEST_REDIS_CLUSTER") == "1"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    kafka = os.environ.get("STREAM_APP_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("STREAM_APP_REDIS_URL")
    if kafka and redis_url:
        yield Endpoints(kafka, redis_url, "environment")
        return
    if _docker_answers():
        yield from _containers()
        return
    try:
        result = services.up(services.Layout.default())
        if redis_cluster_wanted():
            cluster = clusters.RedisCluster(services.Layout.default(redis_port=CLUSTER_PORT))
            result["redis cluster"] = clusters.redis_up(cluster)
            yield Endpoints("127.0.0.1:9092", cluster.url, f"local: {result}", True)
            return
    except services.ServiceError as exc:
        pytest.fail(f"no Kafka/Redis for integration tests: {exc}\n{HOW_TO}")
    yield Endpoints("127.0.0.1:9092", "redis://127.0.0.1:6379/0", f"local: {result}")


def _containers() -> Iterator[Endpoints]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer("apache/kafka:4.4.0").with_kraft() as kafka, \
            RedisContainer("redis:7") as redis:
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        yield Endpoints(kafka.get_bootstrap_server(), f"redis://{host}:{port}/0",
                        "testcontainers")


@pytest.fixture(scope="session", autouse=True)
def published_records_match_their_schemas() -> Iterator[None]:
    """After the session: every record any worker of it published (outcomes, stats,
    dead letters) names its schema in its headers and validates against it."""
    yield
    by_bootstrap: dict[str, set[str]] = {}
    for bootstrap, topic in PUBLISHED:
        by_bootstrap.setdefault(bootstrap, set()).add(topic)
    results: list[tuple[int, list[str]]] = []
    for bootstrap, topics in by_bootstrap.items():
        # A thread of its own: the session's event loop may still be set on this one.
        def check(b: str = bootstrap, t: set[str] = topics) -> None:
            try:
                results.append(asyncio.run(published_problems(b, t)))
            except KafkaConnectionError:  # a module's own broker, gone with its module
                print(f"\n{len(t)} published topics on {b} not checked here: their broker "
                      "is gone (benchmarks/faults.py checks its runs' records itself)")
            except Exception as exc:
                results.append((0, [f"could not read {len(t)} topics on {b}: {exc!r}"]))

        reader = threading.Thread(target=check)
        reader.start()
        reader.join()
    problems = [p for _, found in results for p in found]
    checked = sum(n for n, _ in results)
    print(f"\npublished records checked against their schemas: {checked}")
    assert not problems, f"{len(problems)} published records break their schema:\n" + \
        "\n".join(problems[:20])


@pytest.fixture
async def redis(endpoints: Endpoints) -> AsyncIterator[Redis | RedisCluster]:
    client = endpoints.redis_client()
    yield client
    await client.aclose()


@pytest.fixture
async def producer(endpoints: Endpoints) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap, linger_ms=5)
    await client.start()
    yield client
    await client.stop()


@pytest.fixture
def env_id() -> str:
    """A fresh environment per test: environments never mix, so tests cannot leak."""
    return f"env-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def worker(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[WorkerProcess]:
    """One real worker process per test module, on topics of its own."""
    env = worker_env(endpoints.kafka_bootstrap, endpoints.redis_url,
                     tmp_path_factory.mktemp("worker"), **endpoints.worker_settings())
    process = WorkerProcess(env)
    process.start()
    yield process
    process.stop()
