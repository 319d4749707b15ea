"""Typed records that cross the keyed topic and the dead-letter topic, and their encoding.

Every record the worker writes for itself is a NamedTuple here, encoded and decoded in
this module only, so no other code reads a positional list by index. The keyed topic
carries a contact's two sides (outbound calls and inbound lifecycle events), keyed
``environment␟phone`` so both land on the same partition.
"""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

import orjson

from stream_app.core.domain import jsonbytes
from stream_app.core.domain.matching import CallEvent, InboundType, OutboundRef, PendingCall

SEPARATOR = "\x1f"
"""Between environment and phone in a contact key; a phone can never contain it."""


class OutboundSeen(NamedTuple):
    """An outbound call, validated, on its way to the contact's join state."""

    environment_id: str
    t: float
    """Event time (``occurred_at``), POSIX seconds."""
    agent_id: str
    call_id: str
    ts: float
    """Kafka timestamp of the input record, POSIX seconds."""


class Progress(NamedTuple):
    """An intake's watermarks (``progress.py``), sent to every keyed partition."""

    marks: tuple[tuple[str, int, float], ...]
    """(input topic, input partition, watermark)."""


class InboundSeen(NamedTuple):
    """One inbound lifecycle event, validated, on its way to the contact's join state."""

    environment_id: str
    t: float
    type: InboundType
    call_id: str
    callback_agent_id: str
    event_id: str
    ts: float


KeyedRecord = OutboundSeen | InboundSeen | Progress

_TAGS: dict[type, str] = {OutboundSeen: "o", InboundSeen: "i", Progress: "p"}


ORIGIN_HEADER = "origin"
"""Header on every forwarded record: the input record it came from (for the audit)."""


def origin_header(topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [(ORIGIN_HEADER, f"{partition}:{offset}:{topic}".encode())]


def parse_origin(value: bytes) -> tuple[str, int, int]:
    """(topic, partition, offset) from an origin header value."""
    partition, offset, topic = value.decode().split(":", 2)
    return topic, int(partition), int(offset)


def contact_key(environment_id: str, phone: str) -> bytes:
    return f"{environment_id}{SEPARATOR}{phone}".encode()


# -- format versions --------------------------------------------------------------------
#
# Every keyed record and table row carries the version of its format, and each kind has
# one codec (encode, decode) here. A reader knows the versions up to FORMAT; one it does
# not know was written by a newer release, and decoding it would misread its fields, so
# it raises UnknownFormat, which stops the worker (never a dead letter: the data is
# fine, this release is too old for it). Version 1 is the format written before
# versions existed (no version field): still decoded, so an upgrade needs no migration.

FORMAT = 3
"""The format version this release writes (3: a pending call's events carry their
input's trace context)."""
KNOWN_FORMATS = (1, 2, 3)


class UnknownFormat(Exception):
    """State written in a format this release does not know (a newer release wrote it)."""

    def __init__(self, kind: str, version: object, key: bytes | None = None) -> None:
        where = "" if key is None else f" for key {key!r}"
        super().__init__(f"{kind}{where} has format version {version!r}, which this release "
                         f"(formats {', '.join(map(str, KNOWN_FORMATS))}) cannot read: run "
                         f"the release that wrote it, or a newer one")
        self.kind, self.version, self.key = kind, version, key


def _known(kind: str, version: object, key: bytes | None) -> None:
    if version not in KNOWN_FORMATS or isinstance(version, bool):
        raise UnknownFormat(kind, version, key)


def encode_keyed(record: KeyedRecord) -> bytes:
    return jsonbytes.dumps([_TAGS[type(record)], FORMAT, *record])


def decode_keyed(raw: bytes, key: bytes | None = None) -> KeyedRecord:
    """The inverse of :func:`encode_keyed` (and of version 1, ``[tag, *fields]``);
    UnknownFormat for a newer version, ValueError on anything else."""
    tag, *rest = orjson.loads(raw)
    if rest and isinstance(rest[0], int) and not isinstance(rest[0], bool):
        version, fields = rest[0], rest[1:]
    else:
        version, fields = 1, rest
    _known(f"keyed record {tag!r}", version, key)
    if tag == "o":
        return OutboundSeen(*fields)
    if tag == "i":
        return InboundSeen(*fields)
    if tag == "p":
        return Progress(tuple((topic, int(partition), float(mark))
                              for topic, partition, mark in fields[0]))
    raise ValueError(f"unknown keyed record tag {tag!r}")


# -- table rows (Faust stores them as JSON) ------------------------------------------------

def _rows(kind: str, row: Any, key: bytes | None) -> list[Any]:
    """The entries of a table row: ``{"v": N, "rows": [...]}``, or version 1's bare list."""
    if row is None:
        return []
    if isinstance(row, list):
        return row
    version = row.get("v") if isinstance(row, dict) else None
    _known(kind, version, key)
    return list(row["rows"])


def history_row(refs: list[OutboundRef]) -> dict[str, Any]:
    return {"v": FORMAT, "rows": [list(r) for r in refs]}


def history_of(row: Any, key: bytes | None = None) -> list[OutboundRef]:
    """A contact's outbound calls from its ``history`` table value."""
    return [OutboundRef(*r) for r in _rows("history row", row, key)]


def pending_row(calls: dict[str, PendingCall]) -> dict[str, Any]:
    return {"v": FORMAT,
            "rows": [[p.environment_id, p.call_id, p.partition, [list(e) for e in p.events]]
                     for p in calls.values()]}


def pending_of(row: Any, key: bytes | None = None) -> dict[str, PendingCall]:
    """call id -> pending call, from a ``pending`` table value."""
    calls = {}
    for env, call_id, partition, events in _rows("pending row", row, key):
        calls[call_id] = PendingCall(env, call_id, partition,
                                     tuple(CallEvent(*e) for e in events))
    return calls


# -- dead letters ---------------------------------------------------------------------

DEAD_LETTER_BUDGET = 256 * 1024
"""Bytes of the original value (and key) copied into a dead letter.

A dead letter holds the original twice (text and base64), and must stay well inside
the producer's 1 MB request limit; past the budget it is truncated, marked so, and its
topic/partition/offset say where the whole original can still be fetched.
"""
REASON_LIMIT = 2000


class DeadLetter(NamedTuple):
    """Rejected input with its reason and where it came from (contract §3)."""

    reason: str
    code: str
    source_topic: str
    partition: int
    offset: int
    timestamp: float | None
    key: bytes | None
    value: bytes | None

    def encode(self, budget: int = DEAD_LETTER_BUDGET) -> bytes:
        key, key_cut = _cut(self.key, min(budget, 64 * 1024))
        value, value_cut = _cut(self.value, budget)
        record: dict[str, Any] = {
            "reason": self.reason[:REASON_LIMIT],
            "code": self.code,
            "source_topic": self.source_topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": None if key_cut else _text(key),
            "value": None if value_cut else _text(value),
            "key_base64": _b64(key),
            "value_base64": _b64(value),
            "truncated": key_cut or value_cut,
            "value_bytes": None if self.value is None else len(self.value),
        }
        return jsonbytes.dumps(record)


def _cut(raw: bytes | None, budget: int) -> tuple[bytes | None, bool]:
    if raw is None or len(raw) <= budget:
        return raw, False
    return raw[:budget], True


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")
