"""The Redis scripts apply exactly the once-per-call rule of matching.CallRecord."""

from __future__ import annotations

import asyncio
import uuid
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.counters import ClassifyWrite, CounterStore, InboundWrite
from stream_app.matching import UNMATCHED, CallRecord, Decision, day_bucket
from tests.conftest import Endpoints

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("America/Sao_Paulo")
MIDNIGHT = 1715396400.0  # 2024-05-11T00:00:00-03:00
events = st.lists(st.tuples(st.sampled_from(["received", "answered"]),
                            st.integers(-300, 300).map(lambda s: MIDNIGHT + s),
                            st.integers(0, 3)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(sequence=events, decide_after=st.integers(0, 8),
       decision=st.sampled_from([UNMATCHED, Decision("agent-a", "out-1")]))
def test_scripts_match_the_call_record_rule(endpoints: Endpoints, sequence, decide_after,
                                            decision) -> None:
    asyncio.run(_check(endpoints.redis_url, sequence, decide_after, decision))


async def _check(url: str, sequence, decide_after: int, decision: Decision) -> None:
    env, call = f"env-{uuid.uuid4().hex[:10]}", "call-1"
    store = CounterStore.from_url(url, 3600)
    record: CallRecord | None = None
    try:
        for i, (kind, t, event_no) in enumerate(sequence):
            if i == decide_after:
                await store.classify([ClassifyWrite(env, call, decision, "2024-01-01", "cb")])
                record = record.classified(decision) if record else None
            write = InboundWrite(env, call, kind, t, day_bucket(t, ZONE), f"ev-{event_no}")
            await store.record_inbound([write, write])  # every event delivered twice
            record = record.seen(kind, t) if record else CallRecord.first(kind, t)
        days = [day_bucket(MIDNIGHT - 400, ZONE), day_bucket(MIDNIGHT + 400, ZONE)]
        for day in days:
            stats = await store.read_stats(env, [day])
            mine = day == day_bucket(record.time.t, ZONE)
            assert stats.received == int(mine)
            assert stats.answered == int(mine and record.answered)
            decided = record.decision
            assert stats.unmatched == int(mine and decided == UNMATCHED)
            expected_sources = ({decided.source_agent_id: 1}
                                if mine and decided and decided.source_agent_id else {})
            assert {a: c for a, c in stats.by_source.items() if c} == expected_sources
    finally:
        await store.close()
