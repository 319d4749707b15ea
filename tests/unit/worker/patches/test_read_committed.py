"""Patch: the worker's consumer reads only committed records.

Each test fails without the code it covers."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from stream_app.worker import patch_registry
from stream_app.worker.patches import read_committed

patch_registry.install()


async def test_the_worker_consumer_is_built_read_committed() -> None:
    def faust_builds(self: Any, transport: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(isolation_level="read_uncommitted")  # faust's at_least_once

    consumer = read_committed.reading_committed(faust_builds)(None, None)
    assert consumer._isolation_level == "read_committed"


def test_the_patch_is_installed_on_faust_consumer_thread() -> None:
    assert AIOKafkaConsumerThread._create_worker_consumer.__name__ == "_create_worker_consumer"
    assert AIOKafkaConsumerThread._create_worker_consumer.__module__ == read_committed.__name__
