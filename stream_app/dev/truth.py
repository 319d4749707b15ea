"""The brute-force oracle: what the counters must say, computed from all records at once.

It applies contract §2 literally to every record with its Kafka timestamp: a callback is
classified with the outbound calls and config versions whose record timestamps are at
most G after its first record's. Given the records as they are in the topics (tests
read them back), it is the exact answer; given a simulation before it is produced
(timestamps = emission order, G infinite) it is the answer whenever every outbound call
that explains a callback is produced within G of it, as the simulator arranges. It
shares no code with the stream path's decision on purpose.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from stream_app.core.domain.events import CallbackAgentConfig, InboundCallback, OutboundCall
from stream_app.core.domain.matching import day_bucket, epoch
from stream_app.core.store.counters import Stats

T = TypeVar("T")
Stamped = tuple[T, float]
"""An event and the Kafka timestamp of its record."""


class CallTruth(NamedTuple):
    """One callback as the contract decides it (what ``GET /api/v1/callbacks/{id}``
    explains)."""

    environment_id: str
    call_id: str
    day: str
    t: float
    answered: bool
    callback_agent_id: str
    """Of the call's earliest record (record timestamp, then event id)."""
    source_agent_id: str | None
    """None: unmatched."""
    source_call_id: str | None


def per_call(outbound: Iterable[Stamped[OutboundCall]],
             inbound: Iterable[Stamped[InboundCallback]],
             configs: Iterable[Stamped[CallbackAgentConfig]], window: float, zone: ZoneInfo,
             grace: float = math.inf) -> list[CallTruth]:
    """Every callback and its decision, from all records at once."""
    outbound, configs = list(outbound), list(configs)
    out = []
    for (env, call), events in _calls(inbound).items():
        events.sort(key=lambda e: (e[1], e[0].event_id))
        first, first_ts = events[0]
        cutoff = first_ts + grace
        t = _call_time([e for e, ts in events if ts <= cutoff])
        allowed = _sources(configs, env, first.callback_agent_id, cutoff)
        candidates = [(epoch(o.occurred_at), o.call_id, o.agent_id) for o, ts in outbound
                      if o.environment_id == env and o.contact_phone == first.contact_phone
                      and ts <= cutoff and t - window <= epoch(o.occurred_at) <= t
                      and (allowed is None or o.agent_id in allowed)]
        best = max(candidates) if candidates else None
        out.append(CallTruth(env, call, day_bucket(_call_time([e for e, _ in events]), zone),
                             _call_time([e for e, _ in events]),
                             any(e.type == "answered" for e, _ in events),
                             first.callback_agent_id, best[2] if best else None,
                             best[1] if best else None))
    return out


def expected(outbound: Iterable[Stamped[OutboundCall]],
             inbound: Iterable[Stamped[InboundCallback]],
             configs: Iterable[Stamped[CallbackAgentConfig]], window: float, zone: ZoneInfo,
             grace: float = math.inf, callback_agent_id: str | None = None
             ) -> tuple[dict[tuple[str, str], Stats], dict[tuple[str, str], str]]:
    """((environment, day) -> counters, (environment, agent) -> name), from all records;
    only the calls routed to ``callback_agent_id`` if given."""
    outbound = list(outbound)
    days: dict[tuple[str, str], Stats] = defaultdict(Stats)
    for c in per_call(outbound, inbound, configs, window, zone, grace):
        if callback_agent_id is not None and c.callback_agent_id != callback_agent_id:
            continue
        truth = days[(c.environment_id, c.day)]
        truth.received += 1
        truth.answered += c.answered
        if c.source_agent_id is not None:
            truth.by_source[c.source_agent_id] = truth.by_source.get(c.source_agent_id, 0) + 1
        else:
            truth.unmatched += 1
    return dict(days), _latest_names(o for o, _ in outbound)


def _call_time(events: list[InboundCallback]) -> float:
    received = [epoch(e.occurred_at) for e in events if e.type == "received"]
    return min(received) if received else min(epoch(e.occurred_at) for e in events)


def _calls(inbound: Iterable[Stamped[InboundCallback]]
           ) -> dict[tuple[str, str], list[Stamped[InboundCallback]]]:
    calls: dict[tuple[str, str], list[Stamped[InboundCallback]]] = defaultdict(list)
    for event, ts in inbound:
        calls[(event.environment_id, event.call_id)].append((event, ts))
    return calls


def _sources(configs: list[Stamped[CallbackAgentConfig]], env: str, agent: str,
             cutoff: float) -> frozenset[str] | None:
    """Newest updated_at (ties: the greater list) among versions published by cutoff."""
    known = [(epoch(c.updated_at), tuple(c.source_agent_ids or ())) for c, ts in configs
             if c.environment_id == env and c.agent_id == agent and ts <= cutoff]
    if not known:
        return None
    newest = max(known)[1]
    return frozenset(newest) if newest else None


def _latest_names(outbound: Iterable[OutboundCall]) -> dict[tuple[str, str], str]:
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for call in outbound:
        if call.agent_name:
            key = (call.environment_id, call.agent_id)
            candidate = (epoch(call.occurred_at), call.agent_name)
            if key not in best or candidate > best[key]:
                best[key] = candidate
    return {k: name for k, (_, name) in best.items()}
