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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

InboundType = Literal["received", "answered"]


class OutboundRef(NamedTuple):
    """What the join remembers of one outbound call."""

    t: float
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


def decide(t: float, sources: frozenset[str] | None, history: Iterable[OutboundRef],
           window: float) -> Decision:
    """The latest qualifying outbound call at or before ``t`` within ``window``.

    ``sources`` None means "no role configured": every outbound agent qualifies.
    Ties on time go to the greater call id so the answer never depends on order.
    """
    best: OutboundRef | None = None
    for ref in history:
        if not (t - window <= ref.t <= t):
            continue
        if sources is not None and ref.agent_id not in sources:
            continue
        if best is None or (ref.t, ref.call_id) > (best.t, best.call_id):
            best = ref
    return UNMATCHED if best is None else Decision(best.agent_id, best.call_id)


def remember(history: Sequence[OutboundRef], ref: OutboundRef,
             retention: float) -> list[OutboundRef]:
    """Add ``ref`` to a contact's history (once per call id) and prune it.

    Pruning is in event time: an entry older than the contact's newest entry minus
    ``retention`` (W + allowed lateness) can no longer explain any callback that is
    not later than that lateness, so memory per contact stays bounded by the window.
    """
    known = any(old.call_id == ref.call_id for old in history)
    kept = list(history) if known else [*history, ref]
    newest = max(r.t for r in kept)
    return sorted((r for r in kept if r.t >= newest - retention), key=lambda r: (r.t, r.call_id))


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


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A callback waiting out its grace period; ``arrived`` is processing time."""

    environment_id: str
    call_id: str
    callback_agent_id: str
    arrived: float
    t: float

    def due(self, now: float, grace: float) -> bool:
        return now >= self.arrived + grace

    def updated(self, t: float) -> PendingCall:
        """The same wait, with the call's time as Redis now knows it."""
        return replace(self, t=t)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Once-per-call counting for one inbound call: the rule the Redis script applies.

    Invariant: whatever events repeat or arrive out of order, the call contributes
    exactly 1 to ``received``, at most 1 to ``answered`` and at most one outcome, all
    to the day of its time ``t``.
    """

    time: CallTime
    answered: bool
    decision: Decision | None = None

    @classmethod
    def first(cls, kind: InboundType, t: float) -> CallRecord:
        return cls(CallTime.first(kind, t), kind == "answered")

    def seen(self, kind: InboundType, t: float) -> CallRecord:
        return replace(self, time=self.time.seen(kind, t),
                       answered=self.answered or kind == "answered")

    def classified(self, decision: Decision) -> CallRecord:
        """The first decision wins; later ones are ignored."""
        return self if self.decision is not None else replace(self, decision=decision)
