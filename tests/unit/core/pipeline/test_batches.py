"""A batch is retried through outages and isolated on errors: no message lost or stuck."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError, SlotNotCoveredError

from stream_app.core import outages
from stream_app.core.domain.events import Rejection
from stream_app.core.domain.records import DEAD_LETTER_BUDGET, DeadLetter
from stream_app.core.kafka.delivery import Outbox, Record
from stream_app.core.pipeline import batches


@dataclass
class Msg:
    offset: int
    topic: str = "in"
    partition: int = 0
    timestamp: float = 0.0
    key: bytes | None = None
    value: bytes | None = b"{}"


class Producer:
    """Delivers everything at once; records what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any) -> Any:
        self.sent.append((topic, value or b""))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def send_records(self, topic: str, partition: int, records: Sequence[Record]) -> Any:
        for record in records:
            await self.send(topic, record.key, record.value, partition, None, record.headers)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(len(self.sent) - 1)
        return future

    async def partition_for(self, topic: str, key: bytes) -> int:
        return 0


async def dead_letter(outbox: Outbox, message: Any, rejection: Rejection) -> None:
    await outbox.send("dlq", None, orjson.dumps({"offset": message.offset,
                                                 "code": rejection.code,
                                                 "reason": rejection.reason}))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outages, "backoff", lambda attempt: 0.0)


def run(step: batches.Step, messages: Sequence[Msg]) -> Producer:
    producer = Producer()
    asyncio.run(batches.process(producer, step, messages, dead_letter))
    return producer


def test_a_message_that_breaks_the_code_is_dead_lettered_and_the_rest_go_on() -> None:
    async def step(outbox: Outbox, messages: Sequence[Any]) -> None:
        for m in messages:
            if m.offset == 2:
                raise ZeroDivisionError("division by zero")
            await outbox.send("keyed", None, str(m.offset).encode())

    producer = run(step, [Msg(i) for i in range(5)])
    letters = [orjson.loads(v) for t, v in producer.sent if t == "dlq"]
    assert letters == [{"offset": 2, "code": "internal",
                        "reason": "ZeroDivisionError: division by zero"}]
    assert {v for t, v in producer.sent if t == "keyed"} == {b"0", b"1", b"3", b"4"}


@pytest.mark.parametrize("outage", [
    KafkaConnectionError(), RedisConnectionError("down"), ConnectionRefusedError(),
    # a cluster client that knows only the URL's node, that node down (a failover test
    # dead-lettered valid events on this), and slots without a master mid-failover
    RedisClusterException("Redis Cluster cannot be connected. Please provide at least "
                          "one reachable node: Error 111 connecting to 127.0.0.1:7000."),
    RedisClusterException("All slots are not covered after query all startup_nodes."),
    SlotNotCoveredError("Slot 5 not covered by the cluster.")])
def test_an_outage_is_retried_never_dead_lettered(outage: Exception) -> None:
    calls = []

    async def step(outbox: Outbox, messages: Sequence[Any]) -> None:
        calls.append(len(messages))
        if len(calls) < 4:
            raise outage
        await outbox.send("keyed", None, b"done")

    producer = run(step, [Msg(0), Msg(1)])
    assert calls == [2, 2, 2, 2]
    assert producer.sent == [("keyed", b"done")]


@pytest.mark.parametrize("error", [
    MessageSizeTooLargeError(), ResponseError("script"),
    RedisClusterException("Keys in request don't hash to the same slot")])
def test_non_retriable_service_errors_are_isolated(error: Exception) -> None:
    async def step(outbox: Outbox, messages: Sequence[Any]) -> None:
        raise error

    producer = run(step, [Msg(7)])
    assert [orjson.loads(v)["code"] for t, v in producer.sent] == ["internal"]


def test_a_huge_dead_letter_stays_within_the_producer_limit() -> None:
    value = b"x" * 5_000_000
    letter = DeadLetter("too big", "invalid_field", "in", 3, 41, 1.0, b"k" * 100_000, value)
    encoded = letter.encode()
    assert len(encoded) < 1_000_000
    record = orjson.loads(encoded)
    assert record["truncated"] is True and record["value"] is None
    assert record["value_bytes"] == 5_000_000
    assert (record["partition"], record["offset"], record["source_topic"]) == (3, 41, "in")
    assert len(record["value_base64"]) == (DEAD_LETTER_BUDGET + 2) // 3 * 4


def test_a_small_dead_letter_keeps_the_whole_original() -> None:
    record = orjson.loads(DeadLetter("r", "not_json", "in", 0, 1, None, None,
                                     b"\xff{").encode())
    assert record["truncated"] is False and record["value"] is None
    assert record["value_base64"] == "/3s="


def test_a_lost_partition_abandons_the_batch_without_dead_letters() -> None:
    async def step(outbox: Outbox, messages: Sequence[Any]) -> None:
        await outbox.send("out", None, b"written before the rebalance")
        raise batches.PartitionLost("keyed[2] is no longer this worker's")

    producer = Producer()
    with pytest.raises(batches.PartitionLost):
        asyncio.run(batches.process(producer, step, [Msg(1), Msg(2)], dead_letter))
    assert [topic for topic, _ in producer.sent] == ["out"], "no dead letter, no re-run"
