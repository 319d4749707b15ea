"""Spans of the worker and the reader (OpenTelemetry), off unless the standard ``OTEL_*``
variables ask for an exporter.

One trace per input record, its context carried in Kafka's ``traceparent`` header from
hop to hop: the producer's span → ``intake <topic>`` (validated, forwarded to the keyed
topic) → ``join <type>`` (counted) with its child ``redis counters`` (the batch's script
call that counted it) → ``decide`` (the outcome record published). Each published record
carries the ``traceparent`` of the span that made it, so a subscriber's span joins the
same trace. The reader makes one server span per request, a child of the request's own
``traceparent`` header if it has one.

The steps are recorded *after* they happened (:func:`step` takes the start time and ends
the span at once), because the worker's records go through batches, not through one
call per record, and a context manager per record would cross awaits and batches.

Configuration is the SDK's own: ``OTEL_TRACES_EXPORTER`` (``otlp``: OTLP over HTTP, to
``OTEL_EXPORTER_OTLP_ENDPOINT``; ``console``; ``none``, the default), ``OTEL_SERVICE_NAME``,
``OTEL_TRACES_SAMPLER`` and the rest. Off, :func:`step` hands the parent's context
through unchanged and costs a function call: published records then carry the input's
own ``traceparent``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Attributes = Mapping[str, str | int | float | bool]

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None


def configure(service: str, environ: Mapping[str, str] = os.environ,
              exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on if ``OTEL_TRACES_EXPORTER`` names an exporter (or a test passes
    one: its spans are exported as they end). Return whether it is on."""
    global _tracer
    if exporter is None:
        exporter = _exporter(environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower())
        processor: Any = None if exporter is None else BatchSpanProcessor(exporter)
    else:
        processor = SimpleSpanProcessor(exporter)
    if processor is None:
        _tracer = None
        return False
    name = environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(processor)
    _tracer = provider.get_tracer("callback-stats")
    return True


def _exporter(name: str) -> SpanExporter | None:
    if name in ("", "none"):
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: only otlp, console or none")


def enabled() -> bool:
    return _tracer is not None


def now() -> int:
    """A span timestamp (ns since the epoch): take it where a step begins."""
    return time.time_ns()


def step(name: str, parent: str | bytes | None, attributes: Attributes,
         start: int | None = None, end: int | None = None) -> str:
    """Record one step of one record, a child of ``parent`` (a ``traceparent``), from
    ``start`` (default: now) to ``end`` (default: now); return the step's own
    ``traceparent`` to carry on. Tracing off: ``parent`` unchanged ("" for none)."""
    if isinstance(parent, bytes):
        parent = parent.decode("ascii", "replace")
    if _tracer is None:
        return parent or ""
    context = _PROPAGATOR.extract({"traceparent": parent}) if parent else None
    span = _tracer.start_span(name, context=context, attributes=attributes,
                              start_time=start)
    span.end(end_time=end)
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", parent or "")


def server_span(name: str, traceparent: str | None, attributes: Attributes) -> Any:
    """A span around one HTTP request (a context manager), a child of the request's own
    ``traceparent``; a no-op span when tracing is off."""
    if _tracer is None:
        return trace.use_span(trace.INVALID_SPAN)
    context = _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None
    return _tracer.start_as_current_span(name, context=context, attributes=attributes,
                                         kind=trace.SpanKind.SERVER)
