"""A keyed record in a format this release does not know stops a real worker with one
clear line (never a dead letter, never a misread)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from aiokafka import AIOKafkaProducer

from stream_app.core.kafka.topics import TopicNames
from stream_app.worker.batch_agent import EXIT_UNKNOWN_FORMAT
from tests.conftest import Endpoints
from tests.support import WorkerProcess, read_topic, worker_env

pytestmark = pytest.mark.integration


async def test_a_newer_format_stops_the_worker_with_one_line(endpoints: Endpoints,
                                                             tmp_path: Path) -> None:
    worker = WorkerProcess(worker_env(endpoints.kafka_bootstrap, endpoints.redis_url,
                                      tmp_path))
    worker.start()
    try:
        ready = f"http://127.0.0.1:{worker.env['STREAM_APP_WORKER_WEB_PORT']}/readyz"
        deadline = time.monotonic() + 90
        while not _answers_200(ready):
            assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.5)
        names = TopicNames.from_settings(worker.settings)
        producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                names.keyed, b'["i",99,"env-x",1.0,"received","c","cb","e",2.0,"new"]',
                key=b"env-x\x1f+5511999999999")
        finally:
            await producer.stop()
        assert worker.process is not None
        assert worker.process.wait(timeout=60) == EXIT_UNKNOWN_FORMAT
    finally:
        worker.stop()
    log = worker.log.read_text()
    assert ("stopping the worker: keyed record 'i' for key b'env-x\\x1f+5511999999999' has "
            "format version 99") in log
    assert await read_topic(endpoints.kafka_bootstrap, worker.settings.topic_dlq) == []


def _answers_200(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
