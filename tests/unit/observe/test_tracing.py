"""Traces: one per input record, intake → keyed topic → join → Redis write → outcome
record, each step a child of the one before, the context carried in the records'
``traceparent`` headers; off, the input's own context is carried unchanged. Spans go to
the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stream_app.core.domain.published import TRACE_HEADER
from stream_app.core.domain.records import Progress, encode_keyed
from stream_app.observe import tracing
from tests.unit.core.pipeline import test_intake as intake_fakes
from tests.unit.core.pipeline import test_join as join_fakes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INPUT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{INPUT_SPAN}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure("test", environ={}, exporter=exporter)
    yield exporter
    tracing.configure("test", environ={})
    assert not tracing.enabled()


def callback_through_the_worker() -> list[dict[str, bytes]]:
    """One inbound callback with a ``traceparent``: intake, then the join, then progress
    past its cutoff; the headers of every record published, in order."""
    store = intake_fakes.Store()
    outbox = intake_fakes.Outbox()
    body = orjson.dumps({"event_id": "e1", "environment_id": join_fakes.ENV,
                         "contact_phone": "+5511900000000", "occurred_at":
                         "2026-12-06T10:00:00Z", "call_id": "call-1", "type": "received",
                         "callback_agent_id": "cb"})
    message = intake_fakes.Msg(body, topic=intake_fakes.NAMES.inbound, partition=2, offset=41,
                               headers=[(TRACE_HEADER, TRACEPARENT.encode())])
    asyncio.run(intake_fakes.intake(store).inbound(outbox, [message]))  # type: ignore[arg-type]
    (_, key, keyed, _, keyed_headers), = outbox.sent
    join = join_fakes.join_for(join_fakes.FakeStore([]))
    published = join_fakes.Outbox()
    headers_seen: list[dict[str, bytes]] = [dict(keyed_headers)]

    async def send(topic: str, key: object, value: bytes, partition: object = None,
                   headers: object = None) -> None:
        headers_seen.append(dict(headers or []))  # type: ignore[call-overload]

    published.send = send  # type: ignore[method-assign]
    keyed_message = join_fakes.Msg(keyed, key)
    keyed_message.headers = keyed_headers  # type: ignore[attr-defined]
    done = join_fakes.Msg(encode_keyed(Progress(join_fakes.DONE)))
    asyncio.run(join.on_records(published, [keyed_message, done]))  # type: ignore[arg-type]
    return headers_seen


def span_id(traceparent: bytes) -> str:
    return traceparent.decode().split("-")[2]


def test_one_trace_per_input_record_each_step_a_child_of_the_one_before(
        spans: InMemorySpanExporter) -> None:
    keyed, outcome = callback_through_the_worker()
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert set(by_name) == {"intake inbound-callbacks", "join received", "redis counters",
                            "decide"}
    intake, joined = by_name["intake inbound-callbacks"], by_name["join received"]
    redis, decide = by_name["redis counters"], by_name["decide"]
    assert {format(s.context.trace_id, "032x") for s in by_name.values()} == {TRACE_ID}
    assert intake.parent is not None and format(intake.parent.span_id, "016x") == INPUT_SPAN
    assert joined.parent is not None and joined.parent.span_id == intake.context.span_id
    assert redis.parent is not None and redis.parent.span_id == joined.context.span_id
    assert decide.parent is not None and decide.parent.span_id == joined.context.span_id
    assert span_id(keyed[TRACE_HEADER]) == format(intake.context.span_id, "016x")
    assert span_id(outcome[TRACE_HEADER]) == format(decide.context.span_id, "016x")
    assert intake.attributes is not None and decide.attributes is not None
    assert intake.attributes["messaging.kafka.offset"] == 41
    assert intake.attributes["environment"] == join_fakes.ENV
    assert decide.attributes["outcome"] == "unmatched"
    assert redis.start_time is not None and redis.end_time is not None
    assert joined.start_time == redis.start_time and redis.end_time <= joined.end_time  # type: ignore[operator]


def test_off_the_inputs_own_context_is_carried_unchanged() -> None:
    assert not tracing.enabled()
    keyed, outcome = callback_through_the_worker()
    assert keyed[TRACE_HEADER] == outcome[TRACE_HEADER] == TRACEPARENT.encode()


def test_an_exporter_the_sdk_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        tracing.configure("test", environ={"OTEL_TRACES_EXPORTER": "zipkin"})
    assert not tracing.configure("test", environ={"OTEL_TRACES_EXPORTER": "none"})
