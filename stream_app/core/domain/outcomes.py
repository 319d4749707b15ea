"""The records published on ``callback-outcomes`` (contract §3).

Ids are deterministic (UUIDv5 of kind, environment and call), so a republished record
keeps its id and subscribers can drop duplicates.
"""

from __future__ import annotations

import uuid
from typing import Any

from stream_app.core.domain import jsonbytes
from stream_app.core.domain.matching import Decision
from stream_app.core.domain.records import SEPARATOR

OUTCOME_NAMESPACE = uuid.UUID("6f1c1a55-7f0e-4c43-9d3c-9a1e2f1b7c11")


def outcome_id(kind: str, environment_id: str, call_id: str) -> str:
    """Deterministic: a republished record keeps its id."""
    return str(uuid.uuid5(OUTCOME_NAMESPACE, SEPARATOR.join((kind, environment_id, call_id))))


def answered_record(environment_id: str, call_id: str, callback_agent_id: str,
                    day: str) -> bytes:
    return _record("answered", environment_id, call_id, callback_agent_id, day, {})


def classified_record(environment_id: str, call_id: str, callback_agent_id: str, day: str,
                      decision: Decision, late: bool = False) -> bytes:
    """``late``: the callback was older than the state still covers (see join.py)."""
    extra: dict[str, Any] = {"outcome": decision.outcome}
    if decision.source_agent_id is not None:
        extra |= {"source_agent_id": decision.source_agent_id,
                  "source_call_id": decision.source_call_id}
    if late:
        extra["late"] = True
    return _record("classified", environment_id, call_id, callback_agent_id, day, extra)


def _record(kind: str, environment_id: str, call_id: str, callback_agent_id: str, day: str,
            extra: dict[str, Any]) -> bytes:
    return jsonbytes.dumps({"id": outcome_id(kind, environment_id, call_id), "kind": kind,
                         "environment_id": environment_id, "call_id": call_id,
                         "callback_agent_id": callback_agent_id, "day": day, **extra})
