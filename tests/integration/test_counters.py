"""The Redis scripts apply exactly the once-per-call rule of tests/oracles.CallRecord."""

from __future__ import annotations

import asyncio
import calendar
import uuid
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.core.domain.matching import UNMATCHED, Decision, day_bucket
from stream_app.core.store.batch import SCRIPT_CHUNK
from stream_app.core.store.counters import (
    ClassifyWrite,
    CounterStore,
    InboundWrite,
    period_keys,
)
from stream_app.core.store.layout import agent_prefix, env_tag, stats_prefix
from tests.conftest import Endpoints
from tests.oracles import CallRecord

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("America/Sao_Paulo")
MIDNIGHTS = [1715396400.0,  # 2024-05-11T00:00:00-03:00, within a month
             1717210800.0]  # 2024-06-01T00:00:00-03:00, a month boundary
AGENTS = ("cb-a", "cb-b")
"""An event's callback agent is ``AGENTS[event number % 2]`` (one per event id)."""
events = st.lists(st.tuples(st.sampled_from(["received", "answered"]),
                            st.integers(-300, 300).map(float),
                            st.integers(0, 3)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(sequence=events, decide_after=st.integers(0, 8),
       decision=st.sampled_from([UNMATCHED, Decision("agent-a", "out-1")]),
       midnight=st.sampled_from(MIDNIGHTS))
def test_scripts_match_the_call_record_rule(endpoints: Endpoints, sequence, decide_after,
                                            decision, midnight) -> None:
    """Per day, and per month through the roll-ups (a whole month is read from them)."""
    sequence = [(kind, midnight + offset, n) for kind, offset, n in sequence]
    asyncio.run(_check(endpoints, sequence, decide_after, decision, midnight))


async def _check(endpoints: Endpoints, sequence, decide_after: int, decision: Decision,
                 midnight: float) -> None:
    env, call = f"env-{uuid.uuid4().hex[:10]}", "call-1"
    store = endpoints.store()
    record: CallRecord | None = None
    newly = 0
    try:
        for i, (kind, t, event_no) in enumerate(sequence):
            if i == decide_after:
                await store.classify([ClassifyWrite(env, call, decision, "2024-01-01", "cb")])
                record = record.classified(decision) if record else None
            write = InboundWrite(env, call, kind, t, day_bucket(t, ZONE), f"ev-{event_no}",
                                 t, AGENTS[event_no % 2])
            results = await store.record_inbound([write, write])  # every event twice
            newly += sum(r.newly_answered for r in results)
            record = record.seen(kind, t) if record else CallRecord.first(kind, t)
        days = [day_bucket(midnight - 400, ZONE), day_bucket(midnight + 400, ZONE)]
        months = [_whole_month(day) for day in days]
        assert period_keys(env, months[0])[0].endswith(days[0][:7]), "read from the roll-up"
        # The call's callback agent: that of its earliest record (timestamp, event id).
        _, first_no = min((t, f"ev-{n}") for _, t, n in sequence)
        routed = AGENTS[int(first_no[3:]) % 2]
        for day, month in zip(days, months, strict=True):
            mine, in_month = day == day_bucket(record.time.t, ZONE), \
                day_bucket(record.time.t, ZONE) in month
            await _agrees(store, env, [day], mine, record)
            for agent in AGENTS:
                await _agrees(store, env, [day], mine and agent == routed, record, agent)
                await _agrees(store, env, month, in_month and agent == routed, record, agent)
            await _agrees(store, env, month, day_bucket(record.time.t, ZONE) in month, record)
        await _same_keys_as_a_replay(store, env, day_bucket(record.time.t, ZONE), routed)
        assert newly == int(record.answered), "a call is newly answered exactly once"
    finally:
        await store.close()


async def _same_keys_as_a_replay(store: CounterStore, env: str, day: str, agent: str) -> None:
    """A replay counts the call straight on its final day and agent: a hash a move
    emptied is gone, and no field is left at zero, so both runs leave the same keys and
    fields."""
    for prefix in (stats_prefix(env), f"{env_tag(env)}agent:"):
        keys = {k.decode() if isinstance(k, bytes) else k
                async for k in store.redis.scan_iter(match=f"{prefix}*", count=100_000)}
        start = prefix if prefix.endswith("stats:") else agent_prefix(env, agent)
        assert keys == {start + day, start + day[:7]}
        for key in keys:
            values = await store.redis.hvals(key)
            assert values and all(int(v) != 0 for v in values), (key, values)


def _whole_month(day: str) -> list[str]:
    first = date.fromisoformat(day).replace(day=1)
    size = calendar.monthrange(first.year, first.month)[1]
    return [(first + timedelta(days=i)).isoformat() for i in range(size)]


async def _agrees(store: CounterStore, env: str, days: list[str], mine: bool,
                  record: CallRecord, agent: str | None = None) -> None:
    """The counters over ``days`` say exactly what the call record says (if it is in);
    those of callback agent ``agent`` if given."""
    if agent is None:
        stats = await store.read_stats(env, days)
    else:
        stats = await store.read_range(env, date.fromisoformat(min(days)),
                                       date.fromisoformat(max(days)), agent)
    assert stats.received == int(mine)
    assert stats.answered == int(mine and record.answered)
    decided = record.decision
    assert stats.unmatched == int(mine and decided == UNMATCHED)
    expected_sources = ({decided.source_agent_id: 1}
                        if mine and decided and decided.source_agent_id else {})
    assert {a: c for a, c in stats.by_source.items() if c} == expected_sources


def test_a_batch_longer_than_a_script_call_keeps_its_order(endpoints: Endpoints) -> None:
    """A batch's writes go in chunks of SCRIPT_CHUNK per script call: each result still
    belongs to its write, and every write counts once."""
    asyncio.run(_long_batch(endpoints))


async def _long_batch(endpoints: Endpoints) -> None:
    env, n = f"env-{uuid.uuid4().hex[:10]}", 2 * SCRIPT_CHUNK + 7
    store = endpoints.store()
    try:
        times = [MIDNIGHTS[0] + 7 * i for i in range(n)]
        writes = [InboundWrite(env, f"call-{i}", "answered" if i % 3 else "received", t,
                               day_bucket(t, ZONE), f"ev-{i}") for i, t in enumerate(times)]
        results = await store.record_inbound(writes)
        assert [r.t for r in results] == times
        assert [r.answered_by_this_event for r in results] == [bool(i % 3) for i in range(n)]
        decisions = [UNMATCHED if i % 2 else Decision(f"agent-{i % 5}", f"out-{i}")
                     for i in range(n)]
        classified = await store.classify([ClassifyWrite(env, f"call-{i}", d, w.day, "cb")
                                           for i, (d, w) in enumerate(zip(decisions, writes,
                                                                          strict=True))])
        assert [r.decision if r else None for r in classified] == decisions
        stats = await store.read_stats(env, sorted({w.day for w in writes}))
        assert (stats.received, stats.answered) == (n, sum(1 for i in range(n) if i % 3))
        assert stats.unmatched == n // 2
        assert sum(stats.by_source.values()) == n - n // 2
    finally:
        await store.close()
