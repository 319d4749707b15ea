"""Sending records with Faust's producer, and knowing they were delivered.

A batch is acked (its offsets become committable) only after every record it caused
is acknowledged by the broker: :meth:`Outbox.delivered` awaits each delivery future and
raises if any failed, so a send that fails around a rebalance or an outage can never
be committed over silently (the batch is retried instead; every effect is idempotent).

Records for a known partition (keyed records, changelog rows, progress, and outcome
records, whose partition is their key's) go out as whole record batches, one delivery
future per batch (:class:`Sender`), instead of one send and one future per record: the
per-record path was a tenth of the worker's CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, NamedTuple, Protocol

from stream_app.core.kafka.topics import kafka_partition

Headers = list[tuple[str, bytes]]


class Record(NamedTuple):
    """One record bound for a partition the caller chose."""

    key: bytes | None
    value: bytes | None
    headers: Headers | None = None


class Producer(Protocol):
    """Sends records; every awaitable it returns resolves once the broker acknowledged."""

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: Any) -> Awaitable[Any]:
        """One record, to ``partition`` or where the key's hash puts it."""
        ...

    async def send_records(self, topic: str, partition: int,
                           records: Sequence[Record]) -> Awaitable[int]:
        """``records`` appended to ``partition`` in order; resolves to the last one's
        offset."""
        ...

    async def partition_for(self, topic: str, key: bytes) -> int:
        """The partition the producer's default partitioner gives ``key``."""
        ...


class KafkaBatches(Protocol):
    """The part of aiokafka's producer that sends whole record batches."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


class Sender:
    """Faust's producer for single records; its aiokafka producer for record batches.

    Faust's ``send`` is one aiokafka ``send`` per record (a future each, resolved one by
    one). aiokafka's batch API appends records to a ``BatchBuilder`` and returns one
    future for the whole batch, which resolves to its base offset; a batch's records get
    consecutive offsets, so the last one's is the base plus their count minus one.
    ``kafka`` returns the running aiokafka producer (it is replaced if Faust's producer
    restarts, so it is looked up per call).
    """

    def __init__(self, producer: Any, kafka: Callable[[], KafkaBatches]) -> None:
        self.producer = producer
        self.kafka = kafka

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: Any) -> Awaitable[Any]:
        return await self.producer.send(topic, key, value, partition, timestamp,  # type: ignore[no-any-return]
                                        headers)

    async def send_records(self, topic: str, partition: int,
                           records: Sequence[Record]) -> Awaitable[int]:
        kafka = self.kafka()
        sent: list[tuple[Any, int]] = []
        batch = kafka.create_batch()
        for record in records:
            if not _append(batch, record):  # full: send it, start the next with this one
                sent.append(await _submit(kafka, batch, topic, partition))
                batch = kafka.create_batch()
                if not _append(batch, record):
                    raise ValueError(f"a record for {topic}[{partition}] fits no batch")
        if batch.record_count():
            sent.append(await _submit(kafka, batch, topic, partition))
        return LastOffset(sent)

    async def partition_for(self, topic: str, key: bytes) -> int:
        partitions = await self.kafka().partitions_for(topic)
        return kafka_partition(key, len(partitions))


def _append(batch: Any, record: Record) -> bool:
    """Add ``record`` to ``batch``; False if the batch is full (it always takes one)."""
    return batch.append(timestamp=None, key=record.key, value=record.value,
                        headers=record.headers or []) is not None


async def _submit(kafka: KafkaBatches, batch: Any, topic: str, partition: int
                  ) -> tuple[Any, int]:
    """Send a batch, closed first: an open one would also take other sends' records."""
    batch.close()
    return await kafka.send_batch(batch, topic, partition=partition), batch.record_count()


class LastOffset:
    """Awaits the delivery of every batch sent; gives the offset of the last record."""

    def __init__(self, sent: list[tuple[Any, int]]) -> None:
        if not sent:
            raise ValueError("no records sent")
        self.delivered = asyncio.gather(*(future for future, _ in sent))
        self.count = sent[-1][1]

    def __await__(self) -> Generator[Any, None, int]:
        results = yield from self.delivered.__await__()
        return int(results[-1].offset) + self.count - 1


class Outbox:
    """The records one batch sends; ``delivered()`` before the batch is acked.

    Records with a key or an explicit partition are collected and sent as record batches
    by ``delivered()``, in the order they were given, to the partition given or the one
    the producer's default partitioner would choose for the key; records with neither
    are handed to the producer at once. A batch that fails before ``delivered()`` sends
    none of its collected ones.
    """

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.pending: list[Awaitable[Any]] = []
        self.collected: dict[tuple[str, int], list[Record]] = {}
        self.on_delivery: list[Callable[[], None]] = []
        """What to count once this outbox's records are delivered (``count``)."""

    def count(self, increment: Callable[[], None]) -> None:
        """Run ``increment`` (a metric) once the batch is durable: an attempt that an
        outage made fail, or that is re-run one message at a time, counts nothing."""
        self.on_delivery.append(increment)

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partition: int | None = None,
                   headers: Headers | None = None) -> None:
        """Send a record (partitioned by key unless ``partition``)."""
        if partition is None:
            if key is None:  # any partition will do: the producer picks one
                self.pending.append(await self.producer.send(topic, key, value, None, None,
                                                             headers))
                return
            partition = await self.producer.partition_for(topic, key)
        self.collected.setdefault((topic, partition), []).append(Record(key, value, headers))

    async def flush(self) -> None:
        """Send every record given so far and wait until the broker acknowledged them
        (raise the first failure); what is counted waits for :meth:`delivered`."""
        collected, self.collected = self.collected, {}
        for (topic, partition), records in collected.items():
            self.pending.append(await self.producer.send_records(topic, partition, records))
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)

    async def delivered(self) -> None:
        """Wait until the broker acknowledged every record; raise the first failure.
        Then count what the batch counted."""
        await self.flush()
        counted, self.on_delivery = self.on_delivery, []
        for increment in counted:
            increment()
