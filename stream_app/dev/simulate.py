"""A reproducible traffic generator and the ground truth it implies.

:func:`generate` is pure (a seed in, messages and the validated events out), so the
same scenario drives the demo, the end-to-end tests and the crash test. Disorder is
kept inside what the contract promises to absorb: an outbound call that explains a
callback may be emitted right after it (well within the grace period).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from stream_app.core.domain.events import CallbackAgentConfig, InboundCallback, OutboundCall
from stream_app.core.store.counters import Stats
from stream_app.dev.truth import Stamped, expected
from stream_app.settings import Settings

Kind = Literal["outbound", "inbound", "config"]
AGENT_NAMES = ["Sales Outbound", "Survey Outbound", "Renewals", "Collections", "Win-back",
               "Onboarding", "Reminders", "Upsell"]


@dataclass(frozen=True)
class Scenario:
    seed: int = 7
    day: date = date(2024, 1, 15)
    timezone: str = "UTC"
    environments: int = 2
    environment_prefix: str = "env"
    outbound_agents: int = 4
    contacts: int = 400
    callbacks: int = 1000
    match_rate: float = 0.7
    answer_rate: float = 0.75
    duplicate_rate: float = 0.05
    out_of_order_rate: float = 0.05
    bad_rate: float = 0.01
    window_seconds: int = 604_800
    days: int = 1
    """Callbacks spread over this many days, ending with ``day`` (a backfill if > 1)."""
    shuffle: bool = False
    """Emit calls in random order instead of event-time order (a replay of history)."""


@dataclass
class Traffic:
    """Messages in emission order, plus the valid events they carry (for the oracle)."""

    messages: list[tuple[Kind, bytes]] = field(default_factory=list)
    outbound: list[Stamped[OutboundCall]] = field(default_factory=list)
    inbound: list[Stamped[InboundCallback]] = field(default_factory=list)
    configs: list[Stamped[CallbackAgentConfig]] = field(default_factory=list)
    """Valid events, each with its position in emission order (as a stand-in timestamp)."""
    bad: int = 0

    def truth(self, window: float, zone: ZoneInfo) -> dict[str, dict[str, Any]]:
        """environment -> day -> the stats the reader must show for that day.

        Exact when every record explaining a callback is produced within G of it, which
        holds for live traffic and for a backfill produced faster than G; otherwise
        compute the truth from the topics (:func:`bodies` of ``expected`` with the real
        record timestamps).
        """
        days, names = expected(self.outbound, self.inbound, self.configs, window, zone)
        return bodies(days, names)


def bodies(days: dict[tuple[str, str], Stats], names: dict[tuple[str, str], str]
           ) -> dict[str, dict[str, Any]]:
    """The oracle's counters as the HTTP bodies' data, per environment and day."""
    result: dict[str, dict[str, Any]] = {}
    for (env, day), t in sorted(days.items()):
        result.setdefault(env, {})[day] = truth_body(t, {a: n for (e, a), n in names.items()
                                                         if e == env})
    return result


def truth_body(t: Stats, names: dict[str, str]) -> dict[str, Any]:
    rows = sorted(((a, c) for a, c in t.by_source.items() if c), key=lambda r: (-r[1], r[0]))
    return {"total_callbacks_received": t.received, "callbacks_answered": t.answered,
            "callbacks_unmatched": t.unmatched,
            "callbacks_by_source_agent": [{"source_agent_id": a, "name": names.get(a),
                                           "count": c} for a, c in rows]}


def generate(s: Scenario) -> Traffic:
    rnd = random.Random(s.seed)
    zone = ZoneInfo(s.timezone)
    start = datetime.combine(s.day, datetime.min.time(), zone)
    timeline: list[tuple[float, int, Kind, dict[str, Any]]] = []
    configs: list[tuple[Kind, dict[str, Any]]] = []
    seq = iter(range(10**9))

    for e in range(s.environments):
        env = f"{s.environment_prefix}-{e + 1}"
        agents = [f"{env}-agent-{k + 1}" for k in range(s.outbound_agents)]
        names = {a: AGENT_NAMES[k % len(AGENT_NAMES)] for k, a in enumerate(agents)}
        sources = agents[: max(1, len(agents) // 2)]
        configs += [("config", _config(env, "cb-sales", agents[:1], start - timedelta(days=30))),
                    ("config", _config(env, "cb-sales", sources, start - timedelta(days=1)))]
        phones = [f"+55119{rnd.randrange(10**7, 10**8)}" for _ in range(s.contacts)]
        first_day = start - timedelta(days=s.days - 1)
        for i in range(s.callbacks // s.environments):
            phone = rnd.choice(phones)
            t = first_day + timedelta(seconds=rnd.uniform(0, 86_400 * s.days - 1))
            call = f"{env}-{s.day.isoformat()}-in-{i}"
            agent = rnd.choice(["cb-sales", "cb-general"])
            if rnd.random() < s.match_rate:
                for _ in range(rnd.randint(1, 2)):
                    back = timedelta(seconds=rnd.uniform(60, s.window_seconds * 0.9))
                    by = rnd.choice(agents)
                    out = _outbound(env, f"{call}-out-{next(seq)}", by, names[by], phone, t - back)
                    late = rnd.random() < s.out_of_order_rate
                    timeline.append(((t + timedelta(seconds=1)).timestamp() if late
                                     else (t - back).timestamp(), next(seq), "outbound", out))
            events = [_inbound(env, call, "received", agent, phone, t)]
            if rnd.random() < s.answer_rate:
                events.append(_inbound(env, call, "answered", agent, phone,
                                       t + timedelta(seconds=rnd.uniform(3, 60))))
            if rnd.random() < s.duplicate_rate:
                events.append(dict(rnd.choice(events)))
            for ev in events:
                timeline.append((datetime.fromisoformat(ev["occurred_at"]).timestamp(),
                                 next(seq), "inbound", ev))
        for j in range(s.callbacks // s.environments):
            by, phone = rnd.choice(agents), rnd.choice(phones)
            moment = first_day + timedelta(seconds=rnd.uniform(-s.window_seconds,
                                                               86_400 * s.days - 1))
            noise = _outbound(env, f"{env}-{s.day.isoformat()}-noise-{j}", by, names[by], phone,
                              moment)
            timeline.append((moment.timestamp(), next(seq), "outbound", noise))

    timeline.sort(key=lambda item: (item[0], item[1]))
    if s.shuffle:
        rnd.shuffle(timeline)
    traffic = Traffic()
    for kind, value in configs:
        _add(traffic, kind, value)
    for _, _, kind, value in timeline:
        if rnd.random() < s.bad_rate:
            traffic.messages.append((kind, _bad(rnd, value)))
            traffic.bad += 1
        _add(traffic, kind, value)
    return traffic


def _add(traffic: Traffic, kind: Kind, value: dict[str, Any]) -> None:
    at = float(len(traffic.messages))
    traffic.messages.append((kind, orjson.dumps(value)))
    if kind == "outbound":
        traffic.outbound.append((OutboundCall.model_validate(value), at))
    elif kind == "inbound":
        traffic.inbound.append((InboundCallback.model_validate(value), at))
    else:
        traffic.configs.append((CallbackAgentConfig.model_validate(value), at))


def _bad(rnd: random.Random, value: dict[str, Any]) -> bytes:
    broken = dict(value)
    choice = rnd.randrange(4)
    if choice == 0:
        return b"\xff not json"
    if choice == 1:
        broken["contact_phone"] = "12345"
    elif choice == 2:
        broken["occurred_at"] = broken.get("occurred_at", "2024-01-01T00:00:00Z")[:19]
    else:
        broken["type"] = "voicemail"
        broken.pop("agent_id", None)
    broken["event_id"] = f"bad-{rnd.getrandbits(48):x}"
    return orjson.dumps(broken)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _outbound(env: str, call: str, agent: str, name: str, phone: str,
              moment: datetime) -> dict[str, Any]:
    return {"event_id": f"ev-{call}", "environment_id": env, "call_id": call,
            "agent_id": agent, "agent_name": name, "contact_phone": phone,
            "occurred_at": _stamp(moment)}


def _inbound(env: str, call: str, kind: str, agent: str, phone: str,
             moment: datetime) -> dict[str, Any]:
    return {"event_id": f"ev-{call}-{kind}", "environment_id": env, "call_id": call,
            "type": kind, "callback_agent_id": agent, "contact_phone": phone,
            "occurred_at": _stamp(moment)}


def _config(env: str, agent: str, sources: list[str], updated: datetime) -> dict[str, Any]:
    return {"environment_id": env, "agent_id": agent, "name": "Sales callbacks",
            "source_agent_ids": sources, "updated_at": _stamp(updated)}


async def produce(bootstrap: str, topics: dict[Kind, str], traffic: Traffic,
                  rate: float | None = None, progress: Any = None) -> float:
    """Send every message (configs first, acknowledged, then calls); return seconds taken.

    ``rate`` caps messages per second; ``progress(n)`` is called as messages go out.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks="all")
    await producer.start()
    began = time.monotonic()
    try:
        pending = []
        for sent, (kind, value) in enumerate(traffic.messages, 1):
            pending.append(await producer.send(topics[kind], value))
            if rate:
                ahead = sent / rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if progress and sent % 200 == 0:
                progress(200)
        await asyncio.gather(*pending)
        if progress:
            progress(len(traffic.messages) % 200)
    finally:
        await producer.stop()
    return time.monotonic() - began

def produce_scenario(settings: Settings, scenario: Any, rate: float | None) -> dict[str, Any]:
    """Produce the scenario's traffic with a progress bar; return its truth."""
    from rich.progress import Progress

    from stream_app.core.kafka.topics import ensure_topics

    asyncio.run(ensure_topics(settings))
    traffic = generate(scenario)
    topics: dict[Kind, str] = {"outbound": settings.topic_outbound,
                               "inbound": settings.topic_inbound, "config": settings.topic_config}
    with Progress() as progress:
        task = progress.add_task(f"producing {len(traffic.messages)} messages "
                                 f"({traffic.bad} bad)", total=len(traffic.messages))
        seconds = asyncio.run(produce(settings.kafka_bootstrap, topics, traffic, rate,
                                      lambda n: progress.advance(task, n)))
    print(f"produced {len(traffic.messages)} messages in {seconds:.1f}s "
          f"({len(traffic.messages) / max(seconds, 1e-9):.0f}/s)")
    return traffic.truth(settings.recency_window_seconds, settings.zone)
