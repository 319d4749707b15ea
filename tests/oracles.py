"""Test oracles of the domain rules (brute force, no Redis, no Kafka)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from stream_app.core.domain.matching import CallTime, Decision, InboundType


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
