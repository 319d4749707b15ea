"""Sending records with Faust's producer, and knowing they were delivered.

A batch is acked (its offsets become committable) only after every record it caused
is acknowledged by the broker: :meth:`Outbox.delivered` awaits each delivery future and
raises if any failed, so a send that fails around a rebalance or an outage can never
be committed over silently (the batch is retried instead; every effect is idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol


class Producer(Protocol):
    """What Faust's producer offers (``app.producer``)."""

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: Any) -> Awaitable[Any]: ...


class Outbox:
    """The records one batch sends; ``delivered()`` before the batch is acked."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.pending: list[Awaitable[Any]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> None:
        """Hand a record to the producer (partitioned by key unless ``partition``)."""
        future = await self.producer.send(topic, key, value, partition, None, headers)
        self.pending.append(future)

    async def delivered(self) -> None:
        """Wait until the broker acknowledged every record; raise the first failure."""
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)
