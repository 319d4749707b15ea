"""Nothing the worker does runs the consumer thread's event loop from another thread.

Faust runs aiokafka's consumer in a thread of its own, with its own event loop; every
call into it must cross through that thread (``call_thread``/``seek_wait``). The seek
patch once called aiokafka's ``seek`` from the main thread on a fresh group's partitions
(no committed offset): it resolved the consumer loop's futures from outside that loop
and deleted fetched records the consumer thread was draining (a worker crashed with
``KeyError`` in aiokafka's ``fetched_records`` in the benchmark). asyncio's debug mode
turns any such call into ``RuntimeError: Non-thread-safe operation invoked on an event
loop other than the current one``: this worker runs in it, on the standard loop.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.conftest import Endpoints
from tests.integration.test_state_dir import one_matched_callback
from tests.support import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

CROSS_THREAD = "Non-thread-safe operation"


async def test_a_fresh_group_is_sought_and_consumed_from_the_consumer_thread_only(
        endpoints: Endpoints, producer: AIOKafkaProducer, redis: Redis,
        tmp_path: Path) -> None:
    worker = WorkerProcess(worker_env(endpoints.kafka_bootstrap, endpoints.redis_url,
                                      tmp_path, event_loop="asyncio"))
    worker.env["PYTHONASYNCIODEBUG"] = "1"
    worker.start()
    try:
        # A fresh consumer group: no partition has a committed offset, so the first
        # assignment seeks every input partition to its log start.
        await one_matched_callback(worker, producer, redis)
        deadline = time.monotonic() + 5  # a commit round and the repair timer's tick
        while time.monotonic() < deadline:
            assert CROSS_THREAD not in worker.log.read_text(), worker.log_tail()
            time.sleep(0.5)
    finally:
        worker.stop()
