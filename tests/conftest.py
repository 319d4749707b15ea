"""Real Kafka and Redis, started once per test session.

Order of preference:
1. ``STREAM_APP_KAFKA_BOOTSTRAP`` / ``STREAM_APP_REDIS_URL`` when set (an already
   running broker wins);
2. testcontainers, when a Docker daemon answers;
3. the project's local services (``stream-app services up``: Apache Kafka from Maven
   Central run with java, Debian's redis-server).
Integration tests never skip: when no broker can be had they fail and say how to get one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from stream_app.dev import services
from tests.support import WorkerProcess, worker_env

HOW_TO = ("start one with `stream-app services up` (needs java, mvn and apt), or point "
          "STREAM_APP_KAFKA_BOOTSTRAP / STREAM_APP_REDIS_URL at running ones")


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    redis_url: str
    origin: str


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


@pytest.fixture
async def redis(endpoints: Endpoints) -> AsyncIterator[Redis]:
    client = Redis.from_url(endpoints.redis_url, decode_responses=True)
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
                     tmp_path_factory.mktemp("worker"))
    process = WorkerProcess(env)
    process.start()
    yield process
    process.stop()
