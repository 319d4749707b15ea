"""Patch: a write to a connection the broker closed is a broken connection, on uvloop too
(aiokafka's ``AIOKafkaConnection.send``; aio-libs/aiokafka#1038, open).

aiokafka turns an ``OSError`` from the socket write into ``KafkaConnectionError``, which
every caller retries. On uvloop the same write raises ``RuntimeError: unable to perform
operation on <TCPTransport closed=True …>; the handler is closed`` when the transport
closed before aiokafka's reader saw the end of the stream: in the few milliseconds after
a broker dies. Nothing catches that. The fault matrix caught it killing the consumer
client's metadata synchronizer (a request sent in that window) — the task that alone
answers ``force_metadata_update()`` — and the consumer then waited forever: the group
coordinator holds its coordinator-lookup lock while it waits for a metadata update, the
heartbeat and every commit queue behind the lock, and Faust's fetcher waits for the
commit. That was the worker hang after a broker SIGKILL (see ``worker/metadata_sync.py``,
which also restarts a synchronizer found dead, whatever killed it). The same error
ended the fetcher's or the heartbeat's routine when they were the ones writing.

The patch does for that ``RuntimeError`` what aiokafka does for an ``OSError``: close the
connection as broken and raise ``KafkaConnectionError``. Only when the transport is in
fact closing; any other ``RuntimeError`` is raised unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import errors
from aiokafka.conn import AIOKafkaConnection, CloseReason

from stream_app.patching import Patch, Signature

Send = Callable[..., Any]


def broken_on_closed_transport(original: Send) -> Send:
    def send(self: AIOKafkaConnection, request: Any, expect_response: bool = True) -> Any:
        try:
            return original(self, request, expect_response)
        except RuntimeError as err:
            writer = self._writer
            if writer is None or not writer.transport.is_closing():
                raise
            self.close(reason=CloseReason.CONNECTION_BROKEN)
            raise errors.KafkaConnectionError(
                f"Connection at {self._host}:{self._port} broken: {err}") from err

    return send


PATCH = Patch("closed transport is a broken connection",
              Signature(AIOKafkaConnection, "send", ("self", "request", "expect_response")),
              broken_on_closed_transport, assigned=("_writer", "_host", "_port"))
