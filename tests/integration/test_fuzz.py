"""Hostile input through a real worker: it stays up, every bad message is a dead letter,
every good one is forwarded, and the audit finds nothing missing.

Each message is good or bad *by construction* (the strategies say which), so the
expectation does not come from the validation code under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from stream_app.core.domain.records import ORIGIN_HEADER, parse_origin
from stream_app.core.ops.audit import AuditReport, audit
from tests.conftest import Endpoints
from tests.support import WorkerProcess, poll, read_topic, worker_env

pytestmark = pytest.mark.integration
NO_SHRINKING = [Phase.explicit, Phase.reuse, Phase.generate]
"""Shrinking re-runs a real worker's round trip thousands of times: a failure is reported
as generated (keys name each message in the dead letters)."""

Kind = str  # "outbound" | "inbound" | "config"
Case = tuple[Kind, bytes | None, bool]  # topic kind, value, expected to be valid

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
              max_size=128)
offsets = st.sampled_from(["Z", "z", "+00:00", "-23:59", "+23:59", "+05:30", "-03:00"])
good_times = st.builds(
    lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
                                           f"{frac}{off}",
    st.integers(1971, 8998), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
    st.integers(0, 59), st.integers(0, 59), st.sampled_from(["", ".5", ".123456789"]), offsets)
bad_times = st.sampled_from([
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2024-02-30T00:00:00Z",
    "2024-01-01T00:00:00", "2024-01-01", "1969-12-31T23:59:59Z", "9000-01-01T00:00:00Z",
    "2024-13-01T00:00:00Z", "", "yesterday", "2024-01-01T25:00:00Z"])
phones = st.builds(lambda digits, junk: "+" + junk.join(digits),
                   st.text("0123456789", min_size=8, max_size=15), st.sampled_from(["", " "]))


def event(kind: Kind, time: str, phone: str, ident: str) -> dict[str, Any]:
    if kind == "outbound":
        return {"event_id": ident, "environment_id": ident, "call_id": ident,
                "agent_id": ident, "agent_name": ident, "contact_phone": phone,
                "occurred_at": time}
    if kind == "inbound":
        return {"event_id": ident, "environment_id": ident, "call_id": ident,
                "type": "received", "callback_agent_id": ident, "contact_phone": phone,
                "occurred_at": time}
    return {"environment_id": ident, "agent_id": ident, "name": ident,
            "source_agent_ids": [ident], "updated_at": time}


kinds = st.sampled_from(["outbound", "inbound", "config"])
good = st.builds(lambda k, t, p, i: (k, orjson.dumps(event(k, t, p, i)), True),
                 kinds, good_times, phones, ids)
bad_time = st.builds(lambda k, t, p, i: (k, orjson.dumps(event(k, t, p, i)), False),
                     kinds, bad_times, phones, ids)
i64 = st.integers(-(2**63), 2**63 - 1)
FIELDS = {"outbound": ["environment_id", "occurred_at", "agent_id", "contact_phone"],
          "inbound": ["environment_id", "occurred_at", "type", "callback_agent_id"],
          "config": ["environment_id", "updated_at", "agent_id", "source_agent_ids"]}
bad_field = st.builds(
    lambda k, t, p, i, pick, value: (k, orjson.dumps({**event(k, t, p, i),
                                                      FIELDS[k][pick % 4]: value}), False),
    kinds, good_times, phones, ids, st.integers(0, 3),
    st.one_of(i64, st.just(""), st.just("x" * 300), st.lists(i64, min_size=1),
              st.dictionaries(st.text(max_size=3), i64, max_size=2)))
raw_bytes = st.builds(lambda k, b: (k, b, False), kinds,
                      st.binary(max_size=64).filter(lambda b: not _json_object(b)))
nested = st.builds(lambda k, depth: (k, b"[" * depth + b"]" * depth, False), kinds,
                   st.integers(1, 100_000))
tombstone = st.builds(lambda k: (k, None, False), kinds)
huge = st.builds(lambda k, n: (k, orjson.dumps({"event_id": "x" * n}), False), kinds,
                 st.integers(300_000, 900_000))
cases = st.one_of(good, good, bad_time, bad_field, raw_bytes, nested, tombstone, huge)


def _json_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


@pytest.fixture(scope="module")
def fuzz_worker(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[WorkerProcess]:
    process = WorkerProcess(worker_env(endpoints.kafka_bootstrap, endpoints.redis_url,
                                       tmp_path_factory.mktemp("fuzz")))
    process.start()
    yield process
    process.stop()


@settings(max_examples=6, deadline=None, derandomize=True, phases=NO_SHRINKING,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(cases, min_size=5, max_size=40))
@example([("inbound", orjson.dumps(event("inbound", "9999-12-31T23:59:59-23:59",
                                         "+5511900000000", "a")), False),
          ("outbound", orjson.dumps(event("outbound", "0001-01-01T00:00:00+23:59",
                                          "+5511900000000", "a")), False),
          ("config", orjson.dumps(event("config", "9999-12-31T23:59:59-23:59", "", "a")),
           False),
          ("outbound", orjson.dumps({"event_id": "x" * 900_000}), False),
          ("inbound", b"[" * 100_000 + b"]" * 100_000, False),
          ("config", None, False),
          ("inbound", orjson.dumps(event("inbound", "8998-12-31T23:59:59-23:59",
                                         "+1 (555) 010.0000", "é" * 128)), True)])
async def test_hostile_input_never_stops_the_worker(fuzz_worker: WorkerProcess,
                                                    endpoints: Endpoints,
                                                    batch: list[Case]) -> None:
    s = fuzz_worker.settings
    topics = {"outbound": s.topic_outbound, "inbound": s.topic_inbound,
              "config": s.topic_config}
    run = uuid.uuid4().hex[:8]
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap,
                                max_request_size=2_000_000)
    await producer.start()
    try:
        sent = [await (await producer.send(topics[kind], value, key=f"{run}-{i}".encode()))
                for i, (kind, value, _) in enumerate(batch)]
    finally:
        await producer.stop()
    expected_bad = {f"{run}-{i}" for i, (_, _, valid) in enumerate(batch) if not valid}
    expected_forwarded = {(topics[kind], meta.partition, meta.offset)
                          for (kind, _, valid), meta in zip(batch, sent, strict=True)
                          if valid and kind != "config"}

    async def outcome() -> tuple[set[str], set[tuple[str, int, int]]]:
        letters = await read_topic(endpoints.kafka_bootstrap, s.topic_dlq)
        keyed = await read_topic(endpoints.kafka_bootstrap, f"{s.app_id}-by-contact")
        dead = {m.key.decode() for m in letters if m.key and m.key.decode().startswith(run)}
        forwarded = {parse_origin(v) for m in keyed for k, v in m.headers if k == ORIGIN_HEADER}
        return dead, forwarded & expected_forwarded

    await poll(outcome, lambda o: o == (expected_bad, expected_forwarded), timeout=60,
               interval=0.5, what=f"dead letters and forwards\n{fuzz_worker.log_tail()}")
    assert fuzz_worker.alive(), fuzz_worker.log_tail()
    ends = {(topics[kind], meta.partition): meta.offset + 1
            for (kind, _, _), meta in zip(batch, sent, strict=True)}
    report = await poll(lambda: audit(s), lambda r: _covers(r, ends), timeout=60, interval=1.0,
                        what="the group to commit the batch")
    assert report.missing == 0, report.as_dict()


def _covers(report: AuditReport, ends: dict[tuple[str, int], int]) -> bool:
    """True once the audit read every committed offset up to the batch's last ones."""
    return all(report.committed_to.get(tp, 0) >= end for tp, end in ends.items())


@settings(max_examples=300, deadline=None)
@given(cases)
def test_strategies_agree_with_their_labels(case: Case) -> None:
    """The strategies themselves: a case labelled good parses, a bad one does not."""
    from stream_app.core.domain.events import (
        CallbackAgentConfig,
        InboundCallback,
        OutboundCall,
        parse,
    )

    models = {"outbound": OutboundCall, "inbound": InboundCallback,
              "config": CallbackAgentConfig}
    kind, value, valid = case
    assert (not hasattr(parse(models[kind], value), "code")) is valid, (kind, value)
