"""The stats topic: each touched day's counters published as the endpoint would answer
them, read again a second later and published again only if they changed, and never
marked published before the broker has them."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from stream_app.core.domain.published import STATS, schema_document
from stream_app.core.pipeline.stats_topic import (
    RECHECK_SECONDS,
    StatsKey,
    StatsPublisher,
    stats_value,
)
from stream_app.core.store.counters import Stats
from tests.support import ManualClock

TRACE = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Store:
    """Counters by (environment, day, callback agent); the publisher's hook."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str | None], Stats] = {}
        self.on_counters: Any = None

    async def read_stats(self, env: str, days: list[str]) -> Stats:
        return self.counts.get((env, days[0], None), Stats())

    async def read_range(self, env: str, start: date, end: date, agent: str) -> Stats:
        return self.counts.get((env, start.isoformat(), agent), Stats())


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, Any]] = []
        self.on_delivery: list[Any] = []

    async def send(self, topic: str, key: bytes, value: bytes, partition: Any = None,
                   headers: Any = None) -> None:
        self.sent.append((topic, key, value, headers))

    def count(self, increment: Any) -> None:
        self.on_delivery.append(increment)

    def delivered(self) -> None:
        for done in self.on_delivery:
            done()


def publisher() -> tuple[Store, StatsPublisher, ManualClock]:
    store, clock = Store(), ManualClock()
    return store, StatsPublisher(store, "stats", clock), clock  # type: ignore[arg-type]


async def test_the_days_a_script_touched_are_published_as_the_endpoint_answers() -> None:
    store, stats, _ = publisher()
    store.counts[("env", "2024-01-10", None)] = Stats(3, 2, 1, {"sales": 2},
                                                     {"sales": "Sales"}, 7)
    store.on_counters("env", {("", "2024-01-10"), ("cb", "2024-01-10")})
    outbox = Outbox()
    await stats.publish(outbox, {"env": TRACE.decode()})
    sent = {json.loads(key)["callback_agent_id"] if b"callback" in key else None:
            (json.loads(value), dict(headers)) for _, key, value, headers in outbox.sent}
    assert set(sent) == {None, "cb"}, "the environment's and the agent's day"
    value, headers = sent[None]
    assert value == {"environment_id": "env", "day": "2024-01-10",
                     "total_callbacks_received": 3, "callbacks_answered": 2,
                     "callbacks_unmatched": 1, "callbacks_by_source_agent": [
                         {"source_agent_id": "sales", "name": "Sales", "count": 2}]}
    assert headers == {"content-type": b"application/json", "schema-id": b"callback-stats.v1",
                       "traceparent": TRACE, "stats-version": b"7"}
    assert sent["cb"][0]["total_callbacks_received"] == 0


async def changed_after_publishing() -> tuple[StatsPublisher, ManualClock]:
    """A day published and delivered, then changed by another worker's write, a recheck
    interval later."""
    store, stats, clock = publisher()
    key = ("env", "2024-01-10", None)
    store.counts[key] = Stats(1)
    stats.touched("env", [("", "2024-01-10")])
    outbox = Outbox()
    await stats.publish(outbox)
    outbox.delivered()
    clock.now += RECHECK_SECONDS
    store.counts[key] = Stats(2)  # another worker's write after this one's read
    return stats, clock


def received(outbox: Outbox) -> list[int]:
    return [json.loads(v)["total_callbacks_received"] for _, _, v, _ in outbox.sent]


async def test_a_key_is_read_again_and_published_again_only_if_it_changed() -> None:
    stats, clock = await changed_after_publishing()
    again = Outbox()
    await stats.recheck(again)
    assert received(again) == [2]
    again.delivered()
    clock.now += RECHECK_SECONDS
    quiet = Outbox()
    await stats.recheck(quiet)
    assert quiet.sent == [] and stats.published == {}, "unchanged: nothing more to check"


async def test_a_recheck_whose_delivery_failed_is_sent_again() -> None:
    stats, _ = await changed_after_publishing()
    await stats.recheck(Outbox())  # the broker never acknowledged it
    retry = Outbox()
    await stats.recheck(retry)
    assert received(retry) == [2]


def test_keys_sort_and_values_fit_the_schema() -> None:
    from jsonschema import Draft202012Validator

    key = StatsKey("env", "2024-01-10", "cb")
    assert key.encode() == b'{"callback_agent_id":"cb","day":"2024-01-10","environment_id":"env"}'
    value = json.loads(stats_value(key, Stats(1, 1, 0, {"a": 1, "b": 0})))
    assert value["callbacks_by_source_agent"] == [{"source_agent_id": "a", "name": None,
                                                   "count": 1}], "zeros left out"
    Draft202012Validator(schema_document(STATS)).validate(value)
