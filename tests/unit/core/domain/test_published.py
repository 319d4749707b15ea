"""Published records: their schemas (valid, BACKWARD compatible with the released ones),
the headers each carries, and the trace context taken from an input."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from stream_app.core.domain.matching import Decision
from stream_app.core.domain.outcomes import answered_record, classified_record
from stream_app.core.domain.published import (
    SCHEMAS,
    STATS,
    SchemaId,
    headers,
    schema_document,
    trace_of,
)
from stream_app.core.domain.records import DeadLetter
from stream_app.dev.schema_compat import breaks
from tests.support import REPO

TRACE = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("schema", SCHEMAS, ids=str)
def test_each_schema_is_valid_and_names_itself(schema: SchemaId) -> None:
    document = schema_document(schema)
    Draft202012Validator.check_schema(document)
    assert document["$id"].endswith(str(schema))


@pytest.mark.parametrize("schema", SCHEMAS, ids=str)
def test_each_schema_reads_what_its_released_version_allowed(schema: SchemaId) -> None:
    """The BACKWARD rule against ``schemas/`` (released versions are never edited)."""
    released = REPO / "schemas" / f"{schema}.json"
    assert released.exists(), f"{schema} is not released: copy it to schemas/"
    assert breaks(json.loads(released.read_text()), schema_document(schema)) == []


def valid(schema: SchemaId, value: bytes) -> list[str]:
    validator = Draft202012Validator(schema_document(schema), format_checker=FormatChecker())
    return [e.message for e in validator.iter_errors(json.loads(value))]


def test_the_records_the_worker_writes_fit_their_schemas() -> None:
    matched = classified_record("env", "c1", "cb", "2024-01-10", Decision("sales", "oc1"))
    unmatched = classified_record("env", "c2", "cb", "2024-01-10", Decision(None, None), True)
    assert valid(SchemaId("callback-outcomes.classified", 1), matched) == []
    assert valid(SchemaId("callback-outcomes.classified", 1), unmatched) == []
    assert valid(SchemaId("callback-outcomes.answered", 1),
                 answered_record("env", "c1", "cb", "2024-01-10")) == []
    letter = DeadLetter("bad", "not_json", "in", 0, 3, 1.5, None, b"{x").encode()
    assert valid(SchemaId("callback-events-dlq", 1), letter) == []


def test_a_matched_record_without_its_source_breaks_the_schema() -> None:
    """The schema says what a subscriber may rely on: a matched outcome names its source."""
    broken = json.loads(classified_record("env", "c1", "cb", "2024-01-10",
                                          Decision("sales", "oc1")))
    del broken["source_call_id"]
    assert valid(SchemaId("callback-outcomes.classified", 1), json.dumps(broken).encode())


def test_headers_name_the_schema_and_carry_the_trace() -> None:
    assert headers(STATS) == [("content-type", b"application/json"),
                              ("schema-id", b"callback-stats.v1")]
    assert headers(STATS, TRACE)[-1] == ("traceparent", TRACE)


@pytest.mark.parametrize(("given", "found"), [
    ([("traceparent", TRACE)], TRACE),
    ({"traceparent": TRACE}, TRACE),
    ([("origin", b"x"), ("traceparent", TRACE)], TRACE),
    ([("traceparent", b"00-zz-1-01")], None),
    ([("traceparent", TRACE.decode())], None),
    (None, None),
    ((), None),
])
def test_the_trace_context_of_an_input(given: object, found: bytes | None) -> None:
    assert trace_of(given) == found
