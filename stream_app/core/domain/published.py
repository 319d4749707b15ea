"""What every published record carries besides its value: its schema id, its content
type and the trace context of the input that caused it; and the schemas themselves.

Each record kind on each published topic has a JSON Schema (draft 2020-12) shipped in
the package (``core/domain/schemas/<name>.v<version>.json``), served by the reader at
``/schemas/…``. A record names its schema in the ``schema-id`` header
(``<name>.v<version>``, the file's stem), so a subscriber validates or routes it without
parsing the value first. The released versions are kept in the repository's
``schemas/`` folder; ``tests/unit/core/domain/test_published.py`` fails when a schema changes
incompatibly with its released version (the BACKWARD rule of a schema registry).

Trace context: a W3C ``traceparent`` header on an input record is copied, unchanged, to
the keyed records it becomes and to the records those cause (outcomes, stats, dead
letters), so a subscriber joins its traces to the producer's. A malformed one is not
carried (a subscriber's tracer would reject it anyway).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

Headers = list[tuple[str, bytes]]

CONTENT_TYPE = "content-type"
JSON = b"application/json"
SCHEMA_HEADER = "schema-id"
TRACE_HEADER = "traceparent"
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


class SchemaId(NamedTuple):
    """A schema's name and version; ``str()`` is the header value and file stem."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}.v{self.version}"


CLASSIFIED = SchemaId("callback-outcomes.classified", 1)
ANSWERED = SchemaId("callback-outcomes.answered", 1)
STATS = SchemaId("callback-stats", 1)
DEAD_LETTER = SchemaId("callback-events-dlq", 1)
SCHEMAS = (CLASSIFIED, ANSWERED, STATS, DEAD_LETTER)
TOPICS = ("callback-outcomes", "callback-stats", "callback-events-dlq")
"""The published topics by their contract names (``STREAM_APP_TOPIC_*`` rename them)."""
"""Every record kind the worker publishes, at the version this release writes."""


def headers(schema: SchemaId, trace: bytes | None = None) -> Headers:
    """The headers of a published record of ``schema`` caused by an input with ``trace``."""
    out = [(CONTENT_TYPE, JSON), (SCHEMA_HEADER, str(schema).encode())]
    if trace:
        out.append((TRACE_HEADER, trace))
    return out


def trace_of(message_headers: Any) -> bytes | None:
    """The valid ``traceparent`` among a Kafka message's headers (a list of pairs or a
    mapping, as clients give them), or None."""
    if not message_headers:
        return None
    pairs: Iterable[Any] = (message_headers.items() if hasattr(message_headers, "items")
                            else message_headers)
    for name, value in pairs:
        if name == TRACE_HEADER and isinstance(value, bytes) and _TRACEPARENT.match(value):
            return value
    return None


def schema_document(schema: SchemaId) -> dict[str, Any]:
    """The JSON Schema of ``schema`` as shipped in the package."""
    return dict(_documents()[str(schema)])


@cache
def _documents() -> dict[str, dict[str, Any]]:
    folder = resources.files("stream_app.core.domain") / "schemas"
    return {str(s): json.loads((folder / f"{s}.json").read_text("utf-8")) for s in SCHEMAS}
