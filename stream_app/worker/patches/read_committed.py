"""Patch: the worker's consumer reads ``read_committed``
(``AIOKafkaConsumerThread._create_worker_consumer``).

Faust reads committed records only in its own ``exactly_once`` mode, which this project
does not use (faust-streaming #323, #517). Upstream platforms write the input topics with
transactional producers; read ``read_uncommitted``, an aborted transaction's records
would be counted and a transaction still open would be read before it commits or
aborts. The contract says only committed records count. The changelogs, read by the
same consumer, are written without transactions: every record of them is committed.

Together with :mod:`.absent_offsets` (which tells the markers and aborted records a
fetch passed from a lost message) a transactional input costs nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from stream_app.patching import Patch, Signature

ISOLATION = "read_committed"

Create = Callable[[AIOKafkaConsumerThread, Any], AIOKafkaConsumer]


def reading_committed(original: Create) -> Create:
    def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any
                                ) -> AIOKafkaConsumer:
        consumer = original(self, transport)
        # Read by ``start()``, which builds the fetcher; nothing has started yet.
        consumer._isolation_level = ISOLATION
        return consumer

    return _create_worker_consumer


ALSO_ASSIGNED = ((AIOKafkaConsumer, ("_isolation_level",)),)
"""What the replacement sets on another class: it must still be read from there."""


PATCH = Patch("read committed",
              Signature(AIOKafkaConsumerThread, "_create_worker_consumer",
                        ("self", "transport")),
              reading_committed)
