"""Every Lua script on a real Redis through its codec: the fields Python sends are the
ones the script reads, and the script replies with exactly the codec's fields (a reply
with one field more or less fails :func:`codecs.decode`)."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

import orjson
import pytest

from stream_app.core.domain.matching import Decision, day_bucket
from stream_app.core.store.batch import ScriptBatch
from stream_app.core.store.client import ScriptCall
from stream_app.core.store.codecs import (
    ClassifyReply,
    ClassifyWire,
    InboundReply,
    InboundWire,
    NeedReply,
    SumReply,
    decode,
    keyed,
)
from stream_app.core.store.counters import ClassifyWrite, InboundWrite, NameWrite
from stream_app.core.store.layout import (
    agent_prefix,
    call_key,
    counter_keys,
    names_keys,
    stats_key,
    version_key,
)
from stream_app.core.store.scripts import CLASSIFY, RECORD_INBOUND, SUM_DAYS
from tests.conftest import Endpoints

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("America/Sao_Paulo")
MAY_31, JUNE_1 = 1717210800.0 - 60, 1717210800.0 + 60  # either side of a month boundary


def env() -> str:
    return f"env-{uuid.uuid4().hex[:10]}"


async def test_record_inbound_and_classify_reply_with_their_codecs_fields(
        endpoints: Endpoints) -> None:
    e, day = env(), day_bucket(JUNE_1, ZONE)
    store = endpoints.store()
    try:
        inbound = ScriptBatch(RECORD_INBOUND, {"ttl": "3600"})
        inbound.add(e, "c", ["cb-1"], [day], InboundWire(
            "answered", repr(JUNE_1), day, "e1", repr(JUNE_1), "cb-1", agent_prefix(e, "cb-1")))
        [reply] = await store.scripts.run([inbound.call(inbound.chunks()[0])])
        [result] = orjson.loads(reply)["results"]
        assert decode(InboundReply, result) == InboundReply(
            day=day, t=repr(JUNE_1), decided=False, answered_by_this_event=True,
            decision_day="", decision_agent="", newly_answered=True)

        classify = ScriptBatch(CLASSIFY, {})
        classify.add(e, "c", ["cb-1"], [day], ClassifyWire(
            "matched", "agent-1", "o-1", day, "cb-1", "1.5", "0"))
        classify.add(e, "unknown", [], [day], ClassifyWire(
            "unmatched", "", "", day, "", "1.5", "0"))
        [reply] = await store.scripts.run([classify.call(classify.chunks()[0])])
        stored, unknown = orjson.loads(reply)["results"]
        assert decode(ClassifyReply, stored) == ClassifyReply(
            day=day, outcome="matched", source="agent-1", source_call="o-1", first_time=True,
            answered=True, agent="cb-1")
        assert unknown is False, "no record: nothing decided"
        record = await store.call_record(e, "c")
        assert record is not None and (record.o, record.s, record.sc, record.g, record.cu) \
            == ("matched", "agent-1", "o-1", "cb-1", "1.5")
        stats = await store.read_stats(e, [day])
        assert (stats.received, stats.answered, stats.by_source) == (1, 1, {"agent-1": 1})
    finally:
        await store.close()


async def test_a_script_names_the_counters_it_lacks_and_writes_nothing(
        endpoints: Endpoints) -> None:
    """Every key a script touches is handed to it (Redis Cluster's rule): a call whose
    counters sit on another day than the new event's makes the script answer "need"
    (the (agent, day) pairs it lacks) without writing; the store sends it again."""
    e = env()
    store = endpoints.store()
    try:
        await store.record_inbound([InboundWrite(e, "c", "received", JUNE_1,
                                                 day_bucket(JUNE_1, ZONE), "e1")])
        day = day_bucket(MAY_31, ZONE)
        batch = ScriptBatch(RECORD_INBOUND, {"ttl": "3600"})
        batch.add(e, "c", [], [day], InboundWire("received", repr(MAY_31), day, "e0",
                                                 repr(MAY_31), "", ""))
        [reply] = await store.scripts.run([batch.call(batch.chunks()[0])])
        assert [decode(NeedReply, n) for n in orjson.loads(reply)["need"]] \
            == [NeedReply(agent="", day="2024-06-01")]
        assert (await store.read_stats(e, [day])).version == 1, "nothing written"
        [moved] = await store.record_inbound([InboundWrite(e, "c", "received", MAY_31, day,
                                                           "e0")])
        assert moved.day == day == "2024-05-31"
        assert (await store.read_stats(e, [day])).received == 1
        assert (await store.read_stats(e, ["2024-06-01"])).received == 0
    finally:
        await store.close()


async def test_sum_days_replies_with_sums_names_and_version(endpoints: Endpoints) -> None:
    e, day = env(), day_bucket(JUNE_1, ZONE)
    store = endpoints.store()
    try:
        await store.record_inbound([InboundWrite(e, "c", "received", JUNE_1, day, "e1",
                                                 callback_agent_id="cb-1")])
        await store.classify([ClassifyWrite(e, "c", Decision("agent-1", "o-1"), day, "cb-1")])
        await store.set_names([NameWrite(e, "agent-1", 1.0, "Sales")])
        names, version = names_keys(e)[0], version_key(e)
        hashes = [counter_keys(e, "", day)[0], stats_key(e, "2024-01-01")]
        keys, args = keyed({"names": names, "version": version}, hashes, hashes=2)
        reply = await store.scripts.read(ScriptCall(SUM_DAYS, keys, args))
        assert decode(SumReply, orjson.loads(reply)) == SumReply(
            sums={"received": "1", "src:agent-1": "1"}, names={"agent-1": "Sales"},
            version="3")
    finally:
        await store.close()


async def test_names_keep_the_newest_and_config_versions_are_bounded(
        endpoints: Endpoints) -> None:
    from stream_app.core.store.counters import MAX_CONFIG_VERSIONS, ConfigWrite

    e = env()
    store = endpoints.store()
    try:
        await store.set_names([NameWrite(e, "a", 2.0, "new"), NameWrite(e, "a", 1.0, "old")])
        assert (await store.read_stats(e, [])).names == {"a": "new"}
        await store.add_config_versions(
            [ConfigWrite(e, "cb", float(i), float(i), ("a",), None)
             for i in range(MAX_CONFIG_VERSIONS + 3)])
        versions = (await store.config_versions([(e, "cb")]))[(e, "cb")]
        assert len(versions) == MAX_CONFIG_VERSIONS
        assert min(v.updated_at for v in versions) == 3.0, "the oldest went first"
    finally:
        await store.close()


async def test_a_call_record_names_its_fields(endpoints: Endpoints) -> None:
    e = env()
    store = endpoints.store()
    try:
        assert await store.call_record(e, "none") is None
        await store.redis.hset(call_key(e, "stray"), "x", "1")
        assert await store.call_record(e, "stray") is None, "no e/d: not a record"
    finally:
        await store.close()
