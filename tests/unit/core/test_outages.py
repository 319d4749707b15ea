"""Retrying through outages: backoff with jitter, one log line per outage start and end."""

from __future__ import annotations

import logging

import pytest

from stream_app.core import outages
from stream_app.core.outages import MAX_DELAY, REPORT_EVERY, OutageLog, backoff, through_outages
from tests.support import ManualClock


def test_backoff_grows_exponentially_to_a_cap_with_jitter() -> None:
    assert backoff(1, lambda: 0.0) == pytest.approx(0.025)
    assert backoff(1, lambda: 1.0) == pytest.approx(0.05)
    assert backoff(4, lambda: 1.0) == pytest.approx(0.4)
    assert backoff(50, lambda: 1.0) == MAX_DELAY
    assert backoff(50, lambda: 0.0) == MAX_DELAY / 2


def test_an_outage_is_logged_when_it_starts_while_it_lasts_and_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    clock = ManualClock()
    log = OutageLog(clock)
    for _ in range(500):
        log.failed("kafka", ConnectionError("refused"))
        clock.now += 0.1
    log.succeeded("kafka")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("kafka unavailable (ConnectionError: refused)")
    assert sum("still unavailable" in line for line in lines) == int(50 // REPORT_EVERY)
    assert lines[-1].startswith("kafka is back after 50.0 s (499 retries)")
    log.succeeded("kafka")  # no outage: nothing to say
    assert len(caplog.records) == len(lines)


async def test_through_outages_retries_an_outage_and_propagates_anything_else(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outages, "backoff", lambda attempt: 0.0)
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("away")
        return "done"

    def outage_of(exc: BaseException) -> str | None:
        return "redis" if isinstance(exc, ConnectionError) else None

    log = OutageLog()
    assert await through_outages(flaky, outage_of, log) == "done"
    assert len(calls) == 4 and log.current == {}

    async def broken() -> str:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await through_outages(broken, outage_of, log)


def test_one_definition_of_an_outage() -> None:
    from aiokafka.errors import KafkaConnectionError, RecordTooLargeError, RequestTimedOutError
    from redis.exceptions import ConnectionError, RedisClusterException, ResponseError

    from stream_app.core.outages import ReplicasBehind, outage_of, redis_away

    assert outage_of(KafkaConnectionError()) == "kafka"
    assert outage_of(RequestTimedOutError()) == "kafka", "retriable"
    assert outage_of(RecordTooLargeError()) is None, "our record, not the broker"
    assert outage_of(ConnectionError()) == "redis"
    assert outage_of(ReplicasBehind()) == "redis"
    assert outage_of(RedisClusterException("Redis Cluster cannot be connected. x")) == "redis"
    assert outage_of(RedisClusterException("a bug of ours")) is None
    assert outage_of(ResponseError("WRONGTYPE")) is None, "a bug, not an outage"
    assert outage_of(ValueError()) is None
    assert redis_away(ConnectionError()) and not redis_away(KafkaConnectionError())
