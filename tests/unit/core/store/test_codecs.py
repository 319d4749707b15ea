"""The codecs refuse a reply whose fields drift from the record's."""

from __future__ import annotations

import orjson
import pytest

from stream_app.core.store.codecs import CallRecord, InboundWire, NeedReply, decode, keyed


def test_decode_takes_exactly_the_record_s_fields() -> None:
    assert decode(NeedReply, {"agent": "", "day": "2024-06-01"}) == NeedReply("", "2024-06-01")
    with pytest.raises(ValueError, match="NeedReply"):
        decode(NeedReply, {"agent": "", "day": "2024-06-01", "extra": 1})
    with pytest.raises(ValueError, match="NeedReply"):
        decode(NeedReply, {"day": "2024-06-01"})


def test_keyed_names_every_key_by_its_index() -> None:
    keys, [argv] = keyed({"names": "k1", "version": "k2"}, ["h1", "h2"], hashes=2)
    assert keys == ["h1", "h2", "k1", "k2"]
    assert orjson.loads(argv) == {"hashes": 2, "keys": {"names": 3, "version": 4}}


def test_a_wire_record_is_a_json_object() -> None:
    wire = InboundWire("received", "1.5", "2024-06-01", "e1", "1.5", "", "", call=2)
    assert orjson.loads(orjson.dumps(wire)) == {
        "kind": "received", "t": "1.5", "day": "2024-06-01", "event_id": "e1", "ts": "1.5",
        "agent": "", "agent_prefix": "", "call": 2}


def test_a_call_record_needs_its_time_and_day() -> None:
    assert CallRecord.from_hash({"x": "1"}) is None
    record = CallRecord.from_hash({"e": "1.0", "d": "2024-06-01", "o": "matched", "zz": "?"})
    assert record is not None and (record.d, record.o, record.a) == ("2024-06-01", "matched", None)
