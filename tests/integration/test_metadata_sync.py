"""The broker-SIGKILL hang, on a real broker: what ended aiokafka's metadata synchronizer
(a write to a closed transport on uvloop) is now a retried connection error, and a
synchronizer that ended anyway is started again by the guard (without it, a metadata
update never comes)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from aiokafka.client import AIOKafkaClient

from stream_app.worker import patch_registry
from stream_app.worker.metadata_sync import MetadataSyncGuard, Watched
from tests.conftest import Endpoints

pytestmark = pytest.mark.integration


async def test_a_dead_synchronizer_blocks_metadata_updates_until_the_guard_restarts_it(
        endpoints: Endpoints) -> None:
    client = AIOKafkaClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await client.bootstrap()
    try:
        client._sync_task.cancel()  # dead, however it ended
        await asyncio.gather(client._sync_task, return_exceptions=True)
        update = client.force_metadata_update()
        done, _ = await asyncio.wait([update], timeout=3)
        assert not done, "a metadata update was answered with no synchronizer"
        await MetadataSyncGuard(
            lambda: [Watched("consumer", client, asyncio.get_running_loop())])()
        assert await asyncio.wait_for(update, 30) is True
        assert client._sync_task is not None and not client._sync_task.done()
    finally:
        await client.close()


def test_a_connection_the_broker_closed_is_retried_not_fatal_on_uvloop(
        endpoints: Endpoints) -> None:
    """The root cause: on uvloop, the synchronizer's request over a connection whose
    transport closed (a broker dying, before aiokafka's reader saw the end of the stream)
    raised RuntimeError, which ended the synchronizer. Patched, it is a connection error:
    the next broker or attempt answers, and the synchronizer lives on."""
    patch_registry.install()

    async def scenario() -> None:
        client = AIOKafkaClient(bootstrap_servers=endpoints.kafka_bootstrap)
        await client.bootstrap()
        try:
            node = client.cluster.brokers().pop().nodeId
            conn = await client._get_conn(node)
            # The broker dies with part of a response delivered: uvloop closes the handle
            # and feeds the end of stream to aiokafka's reader, whose task has not run
            # yet; the buffered byte keeps the reader short of "at EOF", so aiokafka
            # still takes the connection for alive, on a closed handle.
            conn._reader.feed_data(b"\0")
            conn._writer.transport.abort()
            await asyncio.sleep(0)
            assert conn.connected() and "closed=True" in repr(conn._writer.transport)
            await client._metadata_update(client.cluster, [])  # the synchronizer's step
            assert await asyncio.wait_for(client.force_metadata_update(), 30) is True
            assert not client._sync_task.done()
        finally:
            await client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
