"""Input event models (contract §1) and their validation into values or rejections.

Parsing never raises: :func:`parse` turns raw Kafka bytes into either a validated
model or a :class:`Rejection` whose ``reason`` goes to the dead-letter topic. Unknown
extra fields are ignored; phones are normalised to E.164 and times must carry an
offset, so two spellings of one contact or instant always compare equal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

_PHONE_JUNK = re.compile(r"[\s\-.()]")
_E164 = re.compile(r"^\+[0-9]{8,15}$")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Accepted instants: everything inside can be bucketed into a day in any zone and
moved by the window without overflowing; anything outside is a dead letter (bad_time)."""
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def normalise_phone(raw: str) -> str:
    """E.164 after removing spaces, ``-``, ``.``, ``(`` and ``)``; ValueError otherwise."""
    phone = _PHONE_JUNK.sub("", raw)
    if not _E164.match(phone):
        raise ValueError("phone must be + then 8-15 digits after removing spaces - . ( )")
    return phone


def parse_rfc3339(raw: Any) -> datetime:
    """An RFC 3339 timestamp with an offset; naive or impossible times are rejected."""
    if not isinstance(raw, str) or len(raw) > 64 or not _RFC3339.match(raw):
        raise ValueError("time must be RFC 3339 with an offset (Z or ±hh:mm)")
    text = raw.replace("z", "Z").replace("t", "T")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail).group(0)  # type: ignore[union-attr]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
    try:
        moment = datetime.fromisoformat(text)
        utc = moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"impossible time: {exc}") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"time out of range: must be from {EARLIEST:%Y-%m-%d} to before "
                         f"{LATEST:%Y-%m-%d} (UTC)")
    return moment


MAX_SOURCES = 10_000
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Phone = Annotated[str, StringConstraints(max_length=64), AfterValidator(normalise_phone)]
Timestamp = Annotated[datetime, BeforeValidator(parse_rfc3339)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class OutboundCall(_Event):
    """An outbound call placed by a source agent; every placed call counts."""

    event_id: Id
    environment_id: Id
    call_id: Text
    agent_id: Text
    agent_name: Annotated[str, StringConstraints(max_length=256)] | None = None
    contact_phone: Phone
    occurred_at: Timestamp


class InboundCallback(_Event):
    """One lifecycle event of an inbound call routed to a callback agent."""

    event_id: Id
    environment_id: Id
    call_id: Text
    type: Literal["received", "answered"]
    callback_agent_id: Text
    contact_phone: Phone
    occurred_at: Timestamp


class CallbackAgentConfig(_Event):
    """The callback role of an agent; null or [] sources mean the role was removed."""

    environment_id: Id
    agent_id: Text
    name: Annotated[str, StringConstraints(max_length=256)] | None = None
    source_agent_ids: list[Text] | None = Field(default=None, max_length=MAX_SOURCES)
    updated_at: Timestamp


Event = OutboundCall | InboundCallback | CallbackAgentConfig


class Rejection(BaseModel):
    """Why an input message was refused; becomes a dead letter."""

    model_config = ConfigDict(frozen=True)

    code: str
    reason: str


T = TypeVar("T", bound=_Event)


def parse(model: type[T], raw: bytes | None) -> T | Rejection:
    """Validate one message value; never raises."""
    if raw is None:
        return Rejection(code="null_value", reason="message has no value (tombstone)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(code="not_json", reason=f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Rejection(code="not_object", reason="JSON value is not an object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return Rejection(code=_code(exc), reason=_describe(exc))


_FIELD_CODES = {"contact_phone": "bad_phone", "occurred_at": "bad_time",
                "updated_at": "bad_time", "type": "unknown_type"}


def _code(exc: ValidationError) -> str:
    """A short, low-cardinality label for metrics."""
    first = exc.errors()[0]
    if first["type"] == "missing":
        return "missing_field"
    field = str(first["loc"][0]) if first["loc"] else ""
    return _FIELD_CODES.get(field, "invalid_field")


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "value"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
