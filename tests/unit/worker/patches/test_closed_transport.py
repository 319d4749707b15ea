"""Patch: a write to a transport that already closed raises KafkaConnectionError (which
every aiokafka caller retries), not uvloop's RuntimeError (which killed the metadata
synchronizer and hung the worker)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import errors
from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.protocol.metadata import MetadataRequest

from stream_app.worker import patch_registry

patch_registry.install()

UVLOOP_CLOSED = ("unable to perform operation on <TCPTransport closed=True reading=False "
                 "0x7f7d90001760>; the handler is closed")


class Transport:
    def __init__(self, closing: bool) -> None:
        self.closing = closing

    def is_closing(self) -> bool:
        return self.closing


class Writer:
    """uvloop's stream writer on a transport: ``write`` raises as uvloop's does."""

    def __init__(self, closing: bool, message: str = UVLOOP_CLOSED) -> None:
        self.transport = Transport(closing)
        self.message = message

    def write(self, data: bytes) -> None:
        raise RuntimeError(self.message)

    def close(self) -> None:
        pass


async def connection(writer: Writer) -> Any:
    conn: Any = AIOKafkaConnection("127.0.0.1", 9)
    conn._writer, conn._version_info = writer, None
    conn._versions = {MetadataRequest.API_KEY: (0, 8)}
    return conn


async def test_a_write_to_a_closed_transport_is_a_broken_connection() -> None:
    conn = await connection(Writer(closing=True))
    closed: list[Any] = []
    conn.close = lambda reason=None, exc=None: closed.append(reason)
    with pytest.raises(errors.KafkaConnectionError, match=r"127\.0\.0\.1:9 broken"):
        conn.send(MetadataRequest([]))
    assert closed == [CloseReason.CONNECTION_BROKEN], "closed as aiokafka closes a broken one"


async def test_any_other_runtime_error_is_raised_unchanged() -> None:
    conn = await connection(Writer(closing=False, message="something else"))
    with pytest.raises(RuntimeError, match="something else"):
        conn.send(MetadataRequest([]))
