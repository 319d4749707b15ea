"""Validation of input events: every contract rule, and bad input as a value."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.domain.events import (
    CallbackAgentConfig,
    InboundCallback,
    OutboundCall,
    Rejection,
    normalise_phone,
    parse,
    parse_rfc3339,
)

GOOD_OUT = {"event_id": "e1", "environment_id": "env", "call_id": "c1", "agent_id": "a1",
            "agent_name": "Sales", "contact_phone": "+55 (11) 9999-0000",
            "occurred_at": "2024-01-01T10:00:00-03:00", "extra": "ignored"}
GOOD_IN = {"event_id": "e2", "environment_id": "env", "call_id": "c2", "type": "answered",
           "callback_agent_id": "cb", "contact_phone": "+551199990000",
           "occurred_at": "2024-01-01T13:00:00Z"}


def test_valid_outbound_is_normalised() -> None:
    call = parse(OutboundCall, orjson.dumps(GOOD_OUT))
    assert isinstance(call, OutboundCall)
    assert call.contact_phone == "+551199990000"
    assert call.occurred_at == datetime(2024, 1, 1, 13, 0, tzinfo=UTC)


def test_valid_inbound_and_config() -> None:
    assert isinstance(parse(InboundCallback, orjson.dumps(GOOD_IN)), InboundCallback)
    cfg = parse(CallbackAgentConfig, orjson.dumps(
        {"environment_id": "env", "agent_id": "cb", "source_agent_ids": None,
         "updated_at": "2024-01-01T00:00:00Z"}))
    assert isinstance(cfg, CallbackAgentConfig) and cfg.source_agent_ids is None


@pytest.mark.parametrize(("raw", "code"), [
    (b"not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (None, "null_value"),
    (orjson.dumps({**GOOD_IN, "type": "hangup"}), "unknown_type"),
    (orjson.dumps({**GOOD_IN, "contact_phone": "+12 34"}), "bad_phone"),
    (orjson.dumps({**GOOD_IN, "contact_phone": "5511999990000"}), "bad_phone"),
    (orjson.dumps({**GOOD_IN, "occurred_at": "2024-01-01T13:00:00"}), "bad_time"),
    (orjson.dumps({**GOOD_IN, "occurred_at": "2024-02-30T13:00:00Z"}), "bad_time"),
    (orjson.dumps({**GOOD_IN, "occurred_at": 1704114000}), "bad_time"),
    (orjson.dumps({k: v for k, v in GOOD_IN.items() if k != "call_id"}), "missing_field"),
    (orjson.dumps({**GOOD_IN, "event_id": ""}), "invalid_field"),
    (orjson.dumps({**GOOD_IN, "event_id": "x" * 129}), "invalid_field"),
    (orjson.dumps({**GOOD_IN, "environment_id": None}), "invalid_field"),
])
def test_bad_input_becomes_a_rejection_with_a_reason(raw: bytes | None, code: str) -> None:
    result = parse(InboundCallback, raw)
    assert isinstance(result, Rejection)
    assert result.code == code
    assert result.reason


@pytest.mark.parametrize("text", ["2024-01-01T10:00:00Z", "2024-01-01t10:00:00z",
                                  "2024-01-01T10:00:00.123456789+05:30",
                                  "2024-01-01 10:00:00-00:00"])
def test_rfc3339_with_offset_is_accepted(text: str) -> None:
    assert parse_rfc3339(text).tzinfo is not None


@given(st.binary(max_size=200))
def test_parse_never_raises(raw: bytes) -> None:
    parse(OutboundCall, raw)


@given(digits=st.text("0123456789", min_size=8, max_size=15),
       junk=st.lists(st.sampled_from([" ", "-", ".", "(", ")"]), max_size=6))
def test_phone_formatting_is_ignored(digits: str, junk: list[str]) -> None:
    spaced = "+" + "".join(d + (junk[i] if i < len(junk) else "") for i, d in enumerate(digits))
    assert normalise_phone(spaced) == "+" + digits
