"""What crosses between Python and the Lua scripts, typed: one record per script's
input and reply, named field by field on both sides (JSON objects, never positional).

A script reads its input from ``ARGV[1]`` as a JSON object and names every key by an
index into ``KEYS`` (:func:`keyed`), so the scripts build no key name: the layout lives
in :mod:`stream_app.core.store.layout` alone. A reply is decoded with :func:`decode`,
which refuses a reply whose fields differ from the record's: a script and its codec
that drift apart fail loudly (``tests/integration/test_scripts.py`` runs every script
on a real Redis through these records).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import orjson

T = TypeVar("T", bound=tuple[Any, ...])


def decode(record: type[T], reply: Mapping[str, Any]) -> T:
    """``record`` from a script's JSON object, every field present and no other."""
    fields: tuple[str, ...] = record._fields  # type: ignore[attr-defined]
    if reply.keys() != set(fields):
        raise ValueError(f"{record.__name__}: the script replied {sorted(reply)}, "
                         f"expected {sorted(fields)}")
    return record(**reply)


def keyed(keys: Mapping[str, str], leading: Sequence[str] = (),
          **fields: Any) -> tuple[list[str], list[str]]:
    """(KEYS, ARGV) of a script taking named keys after ``leading`` ones (a list the
    script walks, e.g. a period's hashes): ``input.keys.<name>`` is the key's index in
    KEYS."""
    names = {name: i for i, name in enumerate(keys, len(leading) + 1)}
    return [*leading, *keys.values()], [orjson.dumps({**fields, "keys": names}).decode()]


@dataclass(slots=True)
class InboundWire:
    """One write of ``record_inbound.lua``: an inbound record of a call."""

    kind: str
    t: str
    """The event time, as ``repr(float)`` (every digit kept)."""
    day: str
    event_id: str
    ts: str
    """The record timestamp, as ``repr(float)``."""
    agent: str
    """The callback agent ("" for none: counted for the environment only)."""
    agent_prefix: str
    """The agent's key prefix, stored for the workers of the version before, which build
    keys from it (a rolling upgrade runs both)."""
    call: int = 0
    """The index in KEYS of the call's record (set by the batch)."""


class InboundReply(NamedTuple):
    """The call's state after a ``record_inbound.lua`` write."""

    day: str
    t: str
    decided: bool
    answered_by_this_event: bool
    decision_day: str
    """"" while undecided."""
    decision_agent: str
    newly_answered: bool


@dataclass(slots=True)
class ClassifyWire:
    """One write of ``classify.lua``: a call's decision."""

    outcome: str
    source: str
    source_call: str
    day: str
    agent: str
    cutoff: str
    late: str
    """``"1"`` or ``"0"``."""
    call: int = 0


class ClassifyReply(NamedTuple):
    """The stored decision (the first one written wins)."""

    day: str
    outcome: str
    source: str
    source_call: str
    first_time: bool
    answered: bool
    agent: str


class NeedReply(NamedTuple):
    """A counter hash a batched script may touch and was not given."""

    agent: str
    day: str


class SumReply(NamedTuple):
    """``sum_days.lua``: a period's counters, the names and the version."""

    sums: dict[str, str]
    names: dict[str, str]
    version: str


class CallRecord(NamedTuple):
    """The stored record of one call (hash ``…:call:<id>``), as ``explain`` reads it;
    the field names are the hash's (written by ``record_inbound.lua`` and
    ``classify.lua``)."""

    e: str
    """The earliest event time."""
    d: str
    """The call's day."""
    r: str | None = None
    """The earliest ``received`` time."""
    a: str | None = None
    """``"1"`` once answered."""
    g: str | None = None
    """The callback agent."""
    o: str | None = None
    """The outcome: ``matched`` / ``unmatched`` (absent while pending)."""
    s: str | None = None
    sc: str | None = None
    """The source agent and call of a match."""
    oa: str | None = None
    """The callback agent the decision's records carry."""
    cu: str | None = None
    lt: str | None = None
    """The decision's cutoff, and ``"1"`` if it was decided late."""

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> CallRecord | None:
        """None for a hash without the fields every record has (none, or a stray key)."""
        if "e" not in fields or "d" not in fields:
            return None
        return cls(**{k: v for k, v in fields.items() if k in cls._fields})
