"""``stream-app tail``: the records of a published topic as JSON lines, for a person or a
pipe into ``jq``.

Read ``read_committed`` by a consumer outside any group (it commits nothing and moves no
subscriber's position), one value per line, in each partition's order. Outcome records
are keyed by environment, stats records by a JSON key naming it; ``--environment``
keeps one environment's records by the value's ``environment_id``, which both carry (a
dead letter names none: ``--environment`` keeps none of them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream_app.core.kafka.topics import ISOLATION, bootstrap_servers
from stream_app.settings import Settings

TOPICS: dict[str, Callable[[Settings], str]] = {
    "callback-outcomes": lambda s: s.topic_outcomes,
    "callback-stats": lambda s: s.topic_stats,
    "callback-events-dlq": lambda s: s.topic_dlq,
}
"""What ``tail`` follows: the published topics by their contract names (the settings say
what they are called on this cluster); ``published.TOPICS`` names them."""
CONNECT_SECONDS = 15.0


class TailError(RuntimeError):
    """Why the topic cannot be followed (one line)."""


async def tail(settings: Settings, which: str, out: TextIO, *, environment: str | None = None,
               from_beginning: bool = False, until_end: bool = False,
               limit: int | None = None) -> int:
    """Print the records of the ``which`` topic; return how many were printed. Follows new
    records until ``limit`` were printed, or (``until_end``) the end offsets as of the
    start were reached."""
    topic = TOPICS[which](settings)
    # Where to start is the reset strategy, not a seek: aiokafka starts a reset on
    # assign(), and one still in flight lands after a seek_to_beginning() (the position
    # then jumps to the end).
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings), group_id=None,
                                enable_auto_commit=False, isolation_level=ISOLATION,
                                auto_offset_reset="earliest" if from_beginning else "latest",
                                request_timeout_ms=int(CONNECT_SECONDS * 1000))
    try:
        try:
            await asyncio.wait_for(consumer.start(), CONNECT_SECONDS)
        except Exception as exc:
            raise TailError(f"Kafka at {settings.kafka_bootstrap} did not answer "
                            f"({type(exc).__name__}); is it up? (STREAM_APP_KAFKA_BOOTSTRAP)"
                            ) from None
        tps = await _partitions(settings, topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        return await _follow(consumer, tps, ends if until_end else None, out, environment,
                             limit)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def _partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings),
                                request_timeout_ms=int(CONNECT_SECONDS * 1000))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not described["partitions"]:
        raise TailError(f"topic {topic} does not exist yet (a worker creates it when it "
                        f"starts)")
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def _follow(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                  ends: dict[TopicPartition, int] | None, out: TextIO,
                  environment: str | None, limit: int | None) -> int:
    printed = 0
    while limit is None or printed < limit:
        if ends is not None and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
            break
        for messages in (await consumer.getmany(timeout_ms=500, max_records=500)).values():
            for m in messages:
                if ends is not None and m.offset >= ends[TopicPartition(m.topic, m.partition)]:
                    continue
                if not _wanted(m.value, environment):
                    continue
                out.write((m.value or b"null").decode("utf-8", "replace") + "\n")
                printed += 1
                if limit is not None and printed >= limit:
                    break
        out.flush()
    return printed


def _wanted(value: bytes | None, environment: str | None) -> bool:
    if environment is None:
        return True
    try:
        record: Any = orjson.loads(value or b"null")
    except orjson.JSONDecodeError:
        return False
    return isinstance(record, dict) and record.get("environment_id") == environment
