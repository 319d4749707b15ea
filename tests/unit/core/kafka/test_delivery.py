"""Records for a known partition leave as whole record batches, in order, and count as
delivered only when every batch is acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from stream_app.core.kafka.delivery import Outbox, Record, Sender


class Broker:
    """aiokafka's batch API over a list per partition; fails or holds on demand."""

    def __init__(self, batch_size: int = 1024) -> None:
        self.batch_size = batch_size
        self.logs: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
        self.batches = 0
        self.fail: Exception | None = None
        self.single: list[tuple[str, bytes | None]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0, is_transactional=0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        log = self.logs.setdefault((topic, partition), [])
        base = len(log)
        buffer = batch._build()
        log.extend((r.key, r.value) for r in DefaultRecordBatch(bytes(buffer)))
        self.batches += 1
        future = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(self.fail)
        else:
            future.set_result(type("Metadata", (), {"offset": base})())
        return future

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any) -> Any:
        self.single.append((topic, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def records(n: int, size: int = 100) -> list[Record]:
    return [Record(b"k%d" % i, b"%05d" % i + b"x" * (size - 5)) for i in range(n)]


def test_a_run_of_records_is_split_into_batches_in_order_and_gives_the_last_offset() -> None:
    broker = Broker(batch_size=1024)
    sender = Sender(broker, lambda: broker)

    async def run() -> int:
        await sender.send_records("t", 0, records(3))  # offsets 0-2
        return await (await sender.send_records("t", 0, records(25)))

    last = asyncio.run(run())
    log = broker.logs[("t", 0)]
    assert [value[:5] for _, value in log] == [b"%05d" % i for i in (*range(3), *range(25))]
    assert last == 27 == len(log) - 1
    assert broker.batches > 2, "25 records of 100 bytes do not fit one 1 kB batch"


def test_a_record_larger_than_a_batch_goes_alone() -> None:
    broker = Broker(batch_size=256)
    sender = Sender(broker, lambda: broker)
    big = Record(b"big", b"y" * 1000)

    async def run() -> int:
        return await (await sender.send_records("t", 1, [*records(1), big, *records(1)]))

    assert asyncio.run(run()) == 2
    assert [key for key, _ in broker.logs[("t", 1)]] == [b"k0", b"big", b"k0"]
    assert broker.batches == 3


def test_a_failed_batch_fails_the_delivery() -> None:
    broker = Broker()
    broker.fail = RuntimeError("not leader")
    outbox = Outbox(Sender(broker, lambda: broker))

    async def run() -> None:
        await outbox.send("t", b"k", b"v", partition=0)
        await outbox.delivered()

    with pytest.raises(RuntimeError, match="not leader"):
        asyncio.run(run())


def test_the_outbox_sends_records_with_a_partition_or_key_at_delivery() -> None:
    broker = Broker()
    outbox = Outbox(Sender(broker, lambda: broker))
    by_key = DefaultPartitioner()(b"env", [0, 1, 2], [0, 1, 2])

    async def run() -> None:
        await outbox.send("keyed", b"a", b"1", partition=2, headers=[("origin", b"x")])
        await outbox.send("outcomes", b"env", b"o")
        await outbox.send("dlq", None, b"no key")
        await outbox.send("keyed", b"b", b"2", partition=2)
        assert broker.logs == {}, "collected until delivered()"
        assert broker.single == [("dlq", b"no key")], "no key, no partition: sent at once"
        await outbox.delivered()

    asyncio.run(run())
    assert broker.logs == {("keyed", 2): [(b"a", b"1"), (b"b", b"2")],
                           ("outcomes", by_key): [(b"env", b"o")]}
    assert broker.batches == 2


def test_what_a_batch_counts_is_counted_once_it_is_delivered_and_never_for_a_failed_try(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Metrics counted through ``Outbox.count``: a Kafka outage's failed attempts and the
    retries count nothing; the attempt that is delivered counts once."""
    from aiokafka.errors import KafkaConnectionError

    from stream_app.core import outages
    from stream_app.core.pipeline import batches

    monkeypatch.setattr(outages, "backoff", lambda attempt: 0.0)
    broker = Broker()
    sender = Sender(broker, lambda: broker)
    counted: list[int] = []
    attempts = 0

    async def effect(outbox: Outbox) -> None:
        nonlocal attempts
        attempts += 1
        broker.fail = KafkaConnectionError("away") if attempts < 3 else None
        outbox.count(lambda: counted.append(1))
        await outbox.send("t", b"k", b"v", partition=0)

    asyncio.run(batches.durably(sender, effect))
    assert attempts == 3 and counted == [1]


def test_a_flush_delivers_what_was_given_so_far_and_counts_nothing_yet() -> None:
    """The join flushes its outcome records before a decided call leaves ``pending``."""
    broker = Broker()
    outbox = Outbox(Sender(broker, lambda: broker))
    counted: list[int] = []

    async def run() -> None:
        outbox.count(lambda: counted.append(1))
        await outbox.send("outcomes", b"env", b"o1", partition=0)
        await outbox.flush()
        assert broker.logs == {("outcomes", 0): [(b"env", b"o1")]} and counted == []
        await outbox.send("outcomes", b"env", b"o2", partition=0)
        await outbox.delivered()

    asyncio.run(run())
    assert broker.logs == {("outcomes", 0): [(b"env", b"o1"), (b"env", b"o2")]}
    assert counted == [1]
