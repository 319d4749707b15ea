"""The pure domain: the as-of match decision, once-per-call rules and day buckets.

No Faust, Kafka or Redis here, so every rule can be property-tested in microseconds.
Times are POSIX seconds (floats); days are ISO ``YYYY-MM-DD`` strings.

Rules (contract §2):
- a callback at ``t`` is matched by the latest outbound call to the same contact in
  the same environment with ``t - W <= t_out <= t`` whose agent is a source of the
  callback agent (any agent when the callback agent has no role configured);
- a call's ``t`` is its earliest ``received`` time, or its earliest event time while
  no ``received`` has been seen; its day bucket is ``t``'s calendar day in the zone;
- a call counts once as received and at most once as answered, whatever repeats.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

InboundType = Literal["received", "answered"]


class OutboundRef(NamedTuple):
    """What the join remembers of one outbound call."""

    t: float
    """Event time (``occurred_at``)."""
    ts: float
    """Kafka timestamp of its input record."""
    agent_id: str
    call_id: str


class Decision(NamedTuple):
    """The classification of one callback; final once made."""

    source_agent_id: str | None
    source_call_id: str | None

    @property
    def outcome(self) -> Literal["matched", "unmatched"]:
        return "unmatched" if self.source_agent_id is None else "matched"


UNMATCHED = Decision(None, None)


def day_bucket(t: float, zone: ZoneInfo) -> str:
    """The calendar day of instant ``t`` in ``zone``."""
    return datetime.fromtimestamp(t, zone).date().isoformat()


def epoch(moment: datetime) -> float:
    """POSIX seconds of an aware datetime."""
    return moment.astimezone(UTC).timestamp()


def decide(t: float, cutoff: float, sources: frozenset[str] | None,
           history: Iterable[OutboundRef], window: float) -> Decision:
    """The latest qualifying outbound call at or before ``t`` within ``window``.

    Only outbound calls whose record timestamp is at most ``cutoff`` (the callback's
    first record timestamp plus G) take part, so the answer is a function of the
    topics' contents, not of when a worker read them. ``sources`` None means "no role
    configured": every outbound agent qualifies. Ties on time go to the greater call id.
    """
    best: OutboundRef | None = None
    for ref in history:
        if ref.ts > cutoff or not (t - window <= ref.t <= t):
            continue
        if sources is not None and ref.agent_id not in sources:
            continue
        if best is None or (ref.t, ref.call_id) > (best.t, best.call_id):
            best = ref
    return UNMATCHED if best is None else Decision(best.agent_id, best.call_id)


def remember(history: Sequence[OutboundRef], ref: OutboundRef) -> list[OutboundRef]:
    """Add ``ref`` to a contact's history, once per call id (the earliest record wins).

    Invariant: the result is sorted by (t, call id) and holds each call id once, with
    the smallest record timestamp seen for it, whatever the order of arrival.
    """
    kept = {r.call_id: r for r in history}
    old = kept.get(ref.call_id)
    if old is None or ref.ts < old.ts:
        kept[ref.call_id] = ref
    return sorted(kept.values(), key=lambda r: (r.t, r.call_id))


def prune(history: Sequence[OutboundRef], horizon: float) -> list[OutboundRef]:
    """Drop outbound calls older than ``horizon`` (event time).

    The join prunes with ``horizon = newest callback time seen on the partition - W -
    allowed lateness``: such a call can explain no callback that is not itself later
    than the allowed lateness, whatever the contact.
    """
    return [r for r in history if r.t >= horizon]


@dataclass(frozen=True, slots=True)
class CallTime:
    """A call's time: its earliest ``received`` time, else its earliest event time.

    Folding events in any order gives the same result.
    """

    earliest: float
    received: float | None

    @property
    def t(self) -> float:
        return self.earliest if self.received is None else self.received

    @classmethod
    def first(cls, kind: InboundType, t: float) -> CallTime:
        return cls(t, t if kind == "received" else None)

    def seen(self, kind: InboundType, t: float) -> CallTime:
        received = self.received
        if kind == "received":
            received = t if received is None else min(received, t)
        return CallTime(min(self.earliest, t), received)


class ConfigVersion(NamedTuple):
    """One version of a callback agent's role, as read from ``callback-agent-config``."""

    updated_at: float
    ts: float
    """Kafka timestamp of its record."""
    source_agent_ids: tuple[str, ...] | None


def sources_at(versions: Iterable[ConfigVersion], cutoff: float) -> frozenset[str] | None:
    """The source agents a callback with this cutoff is classified with.

    The version with the newest ``updated_at`` among those whose record timestamp is at
    most ``cutoff`` (ties: the greater list), so a config published after the callback's
    grace changes nothing, in a live run or a replay. None (no version, or a removed
    role: null or []) means every outbound agent of the environment qualifies.
    """
    known = [v for v in versions if v.ts <= cutoff]
    if not known:
        return None
    newest = max(known, key=lambda v: (v.updated_at, v.source_agent_ids or ()))
    return frozenset(newest.source_agent_ids) if newest.source_agent_ids else None


class CallEvent(NamedTuple):
    """One inbound lifecycle event of a call, as the join keeps it."""

    type: InboundType
    t: float
    ts: float
    callback_agent_id: str
    event_id: str
    trace: str = ""
    """The input record's W3C ``traceparent`` (empty: none): carried to the outcome
    records the event causes; no part of any decision."""


class PendingCall(NamedTuple):
    """A callback not yet decided: its events so far, on keyed partition ``partition``.

    Everything the decision needs is a function of these events, so it does not matter
    in which order, or how many times, they arrived.
    """

    environment_id: str
    call_id: str
    partition: int
    events: tuple[CallEvent, ...]

    def seen(self, event: CallEvent) -> PendingCall:
        """The same call with ``event`` added (once per event id)."""
        if any(e.event_id == event.event_id and e.ts <= event.ts for e in self.events):
            return self
        kept = tuple(e for e in self.events if e.event_id != event.event_id)
        return self._replace(events=tuple(sorted((*kept, event),
                                                 key=lambda e: (e.ts, e.event_id))))

    @property
    def first(self) -> CallEvent:
        """The call's earliest record (by timestamp, then event id): its callback agent."""
        return self.events[0]

    def cutoff(self, grace: float) -> float:
        """Records with a timestamp up to here take part in the decision."""
        return self.first.ts + grace

    def time(self, grace: float) -> CallTime:
        """The call's time as the records up to the cutoff tell it."""
        cutoff = self.cutoff(grace)
        known = [e for e in self.events if e.ts <= cutoff]
        folded = CallTime.first(known[0].type, known[0].t)
        for e in known[1:]:
            folded = folded.seen(e.type, e.t)
        return folded
