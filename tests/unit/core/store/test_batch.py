"""A batch of script writes: grouped per environment, chunked, every key handed over
once and named by index."""

from __future__ import annotations

import orjson
import pytest

from stream_app.core.store.batch import SCRIPT_CHUNK, ScriptBatch
from stream_app.core.store.codecs import InboundWire, NeedReply
from stream_app.core.store.layout import call_key, counter_keys, version_key
from stream_app.core.store.scripts import RECORD_INBOUND


def wire(day: str, agent: str = "") -> InboundWire:
    return InboundWire("received", "1.0", day, "e", "1.0", agent, "")


def test_writes_are_grouped_per_environment_and_chunked() -> None:
    batch = ScriptBatch(RECORD_INBOUND, {"ttl": "60"})
    for i in range(SCRIPT_CHUNK + 1):
        batch.add("a", f"c{i}", [], ["2024-06-01"], wire("2024-06-01"))
    batch.add("b", "c", [], ["2024-06-01"], wire("2024-06-01"))
    chunks = batch.chunks()
    assert [(c.environment_id, len(c.positions)) for c in chunks] \
        == [("a", SCRIPT_CHUNK), ("a", 1), ("b", 1)]
    assert chunks[2].positions == [SCRIPT_CHUNK + 1], "positions in the whole batch"


def test_a_call_names_every_key_by_its_index() -> None:
    batch = ScriptBatch(RECORD_INBOUND, {"ttl": "60"})
    batch.add("e", "c1", ["cb"], ["2024-06-01"], wire("2024-06-01", "cb"))
    batch.add("e", "c1", ["cb"], ["2024-06-01"], wire("2024-06-01", "cb"))
    call = batch.call(batch.chunks()[0])
    argument = orjson.loads(call.args[0])
    keys = list(call.keys)
    assert len(keys) == len(set(keys)), "each key once"
    assert [keys[w["call"] - 1] for w in argument["writes"]] == [call_key("e", "c1")] * 2
    for agent in ("", "cb"):
        day, month = counter_keys("e", agent, "2024-06-01")
        named = argument["counters"][f"{agent}\t2024-06-01"]
        assert (keys[named["day"] - 1], keys[named["month"] - 1]) == (day, month)
    assert keys[argument["version"] - 1] == version_key("e")
    assert argument["ttl"] == "60" and argument["channel"].endswith("changed")


def test_a_need_adds_counters_and_a_day_that_is_none_is_a_bug() -> None:
    batch = ScriptBatch(RECORD_INBOUND, {})
    batch.add("e", "c", [], ["2024-06-01"], wire("2024-06-01"))
    batch.need("e", [NeedReply("cb", "2024-05-31")])
    assert ("cb", "2024-05-31") in batch.counters["e"]
    with pytest.raises(RuntimeError, match="no day"):
        batch.need("e", [NeedReply("", "cbs:{1:e}:stats:x")])
