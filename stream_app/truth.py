"""The brute-force oracle: what the counters must say, computed from all events at once.

It knows every outbound call, so it equals the stream's answer whenever every outbound
call that explains a callback arrives within the grace period (the simulator keeps
its disorder inside that bound). Used by the simulator's ``--truth`` file and the tests;
it shares no code with the stream path's decision on purpose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from .counters import Stats
from .events import CallbackAgentConfig, InboundCallback, OutboundCall
from .matching import day_bucket, epoch


def expected(outbound: Iterable[OutboundCall], inbound: Iterable[InboundCallback],
             configs: Iterable[CallbackAgentConfig], window: float,
             zone: ZoneInfo) -> tuple[dict[tuple[str, str], Stats], dict[tuple[str, str], str]]:
    """((environment, day) -> counters, (environment, agent) -> name), from all events."""
    outbound = list(outbound)
    sources = _latest_sources(configs)
    days: dict[tuple[str, str], Stats] = defaultdict(Stats)
    for (env, _call), events in _calls(inbound).items():
        received = [epoch(e.occurred_at) for e in events if e.type == "received"]
        t = min(received) if received else min(epoch(e.occurred_at) for e in events)
        first = events[0]
        truth = days[(env, day_bucket(t, zone))]
        truth.received += 1
        truth.answered += any(e.type == "answered" for e in events)
        allowed = sources.get((env, first.callback_agent_id))
        candidates = [(epoch(o.occurred_at), o.call_id, o.agent_id) for o in outbound
                      if o.environment_id == env and o.contact_phone == first.contact_phone
                      and t - window <= epoch(o.occurred_at) <= t
                      and (allowed is None or o.agent_id in allowed)]
        if candidates:
            agent = max(candidates)[2]
            truth.by_source[agent] = truth.by_source.get(agent, 0) + 1
        else:
            truth.unmatched += 1
    return dict(days), _latest_names(outbound)


def _calls(inbound: Iterable[InboundCallback]) -> dict[tuple[str, str], list[InboundCallback]]:
    calls: dict[tuple[str, str], list[InboundCallback]] = defaultdict(list)
    for event in inbound:
        calls[(event.environment_id, event.call_id)].append(event)
    return calls


def _latest_sources(configs: Iterable[CallbackAgentConfig]
                    ) -> dict[tuple[str, str], frozenset[str] | None]:
    latest: dict[tuple[str, str], CallbackAgentConfig] = {}
    for cfg in configs:
        key = (cfg.environment_id, cfg.agent_id)
        if key not in latest or epoch(cfg.updated_at) > epoch(latest[key].updated_at):
            latest[key] = cfg
    return {k: frozenset(c.source_agent_ids) if c.source_agent_ids else None
            for k, c in latest.items()}


def _latest_names(outbound: Iterable[OutboundCall]) -> dict[tuple[str, str], str]:
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for call in outbound:
        if call.agent_name:
            key = (call.environment_id, call.agent_id)
            candidate = (epoch(call.occurred_at), call.agent_name)
            if key not in best or candidate > best[key]:
                best[key] = candidate
    return {k: name for k, (_, name) in best.items()}
