"""The join over plain dicts: every decision equals a brute-force oracle, whatever the
reading order, duplicates and moments progress arrives (like bytewax's _JoinState tests).

Input partitions are modelled as record streams in timestamp order; the join reads a
random interleaving of them, with progress records (each partition's newest timestamp
read so far) inserted at random moments and replays of random prefixes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.domain.matching import ConfigVersion, Decision
from stream_app.core.domain.progress import InputPartition, Watermarks
from stream_app.core.domain.records import InboundSeen, OutboundSeen, Progress, encode_keyed
from stream_app.core.kafka.topics import TopicNames
from stream_app.core.pipeline.join import AllPartitions, Join
from stream_app.core.store.counters import (
    ClassifyResult,
    ClassifyWrite,
    InboundResult,
    InboundWrite,
)
from stream_app.settings import Settings
from tests.oracles import CallRecord

W, G = 100.0, 10.0
ENV, PHONE = "e", "+5511900000000"
PHONES = [PHONE, "+5511900000001"]
INPUTS = [InputPartition("out", 0), InputPartition("out", 1), InputPartition("in", 0),
          InputPartition("in", 1)]


class FakeStore:
    """The Redis scripts' semantics (CallRecord) over a dict."""

    def __init__(self, versions: list[ConfigVersion]) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.decided: dict[str, tuple[str, str, Decision]] = {}
        self.answered_by: dict[str, str] = {}
        self.versions = versions

    async def record_inbound(self, writes: list[InboundWrite]) -> list[InboundResult]:
        out = []
        for w in writes:
            old = self.calls.get(w.call_id)
            new = CallRecord.first(w.kind, w.t) if old is None else old.seen(w.kind, w.t)
            self.calls[w.call_id] = new
            newly = w.kind == "answered" and w.call_id not in self.answered_by
            mine = w.kind == "answered" and self.answered_by.setdefault(w.call_id,
                                                                        w.event_id) == w.event_id
            stored = self.decided.get(w.call_id)
            out.append(InboundResult("d", new.time.t, stored is not None, mine,
                                     stored and stored[0], stored and stored[1], newly))
        return out

    async def classify(self, writes: list[ClassifyWrite]) -> list[ClassifyResult]:
        out = []
        for w in writes:
            first = w.call_id not in self.decided
            self.decided.setdefault(w.call_id, (w.day, w.callback_agent_id, w.decision))
            day, agent, decision = self.decided[w.call_id]
            out.append(ClassifyResult(day, decision, first, self.calls[w.call_id].answered,
                                      agent))
        return out

    async def config_versions(self, wanted: Any) -> dict[tuple[str, str], list[ConfigVersion]]:
        return {k: list(self.versions) for k in wanted}


@dataclass
class Msg:
    value: bytes
    key: bytes | None = None
    partition: int = 0
    topic: str = "keyed"
    offset: int = 0
    timestamp: float = 0.0


@dataclass
class Outbox:
    sent: list[bytes] = field(default_factory=list)
    flushed: int = 0
    """How many of ``sent`` the broker acknowledged (``flush``)."""

    async def send(self, topic: str, key: Any, value: bytes, partition: Any = None,
                   headers: Any = None) -> None:
        self.sent.append(value)

    async def flush(self) -> None:
        self.flushed = len(self.sent)


def join_for(store: FakeStore) -> Join:
    s = Settings(recency_window_seconds=int(W), match_grace_seconds=G,
                 allowed_lateness_seconds=10**6, dedup_ttl_seconds=10**7)
    return Join(s, TopicNames.from_settings(s), store, {}, {},  # type: ignore[arg-type]
                Watermarks(INPUTS))


# -- strategies: records on input partitions, each partition in timestamp order ---------

outbound_records = st.lists(st.tuples(
    st.integers(0, 300).map(float),                 # event time
    st.integers(0, 120).map(float),                 # record timestamp
    st.sampled_from("abc"), st.integers(0, 1), st.sampled_from(PHONES)), max_size=12)
inbound_records = st.lists(st.tuples(
    st.integers(0, 300).map(float), st.integers(0, 120).map(float),
    st.sampled_from(["received", "answered"]), st.integers(0, 5),   # call number
    st.sampled_from(["cb1", "cb2"]), st.integers(0, 1), st.sampled_from(PHONES)),
    min_size=1, max_size=10)
config_versions = st.lists(st.builds(ConfigVersion, st.integers(0, 5).map(float),
                                     st.integers(0, 120).map(float),
                                     st.none() | st.lists(st.sampled_from("abc"), min_size=1,
                                                          max_size=2).map(tuple)), max_size=3)


def streams(outs: list, ins: list) -> dict[InputPartition, list[tuple[float, bytes, bytes]]]:
    """Per input partition: (timestamp, key, encoded record), in timestamp order."""
    parts: dict[InputPartition, list[tuple[float, bytes, bytes]]] = {p: [] for p in INPUTS}
    for i, (t, ts, agent, p, phone) in enumerate(outs):
        rec = OutboundSeen(ENV, t, agent, f"o{i}", ts)
        parts[InputPartition("out", p)].append((ts, phone.encode(), encode_keyed(rec)))
    for i, (t, ts, kind, call, agent, p, _) in enumerate(ins):
        rec = InboundSeen(ENV, t, kind, f"call{call}", agent, f"ev{i}", ts)
        parts[InputPartition("in", p)].append((ts, _phone_of(call, ins), encode_keyed(rec)))
    for records in parts.values():
        records.sort(key=lambda r: r[0])
    return parts


def _phone_of(call: int, ins: list) -> bytes:
    """A call's events share its first event's contact (the contract expects that)."""
    first = next(row for row in ins if row[3] == call)
    return first[6].encode()


def oracle(outs: list, ins: list, versions: list[ConfigVersion]) -> dict[str, Decision]:
    """Contract §2 applied literally to all records."""
    decisions = {}
    for call in sorted({row[3] for row in ins}):
        events = sorted(((ts, f"ev{i}", t, kind, agent, phone)
                         for i, (t, ts, kind, c, agent, _, phone) in enumerate(ins)
                         if c == call), key=lambda e: (e[0], e[1]))
        first_ts = events[0][0]
        contact = _phone_of(call, ins).decode()
        cutoff = first_ts + G
        known = [e for e in events if e[0] <= cutoff]
        received = [e[2] for e in known if e[3] == "received"]
        t = min(received) if received else min(e[2] for e in known)
        pub = [v for v in versions if v.ts <= cutoff]
        allowed = None
        if pub:
            best = max(pub, key=lambda v: (v.updated_at, v.source_agent_ids or ()))
            allowed = set(best.source_agent_ids) if best.source_agent_ids else None
        ok = [(ot, f"o{i}", a) for i, (ot, ots, a, _, phone) in enumerate(outs)
              if phone == contact and ots <= cutoff and t - W <= ot <= t
              and (allowed is None or a in allowed)]
        decisions[f"call{call}"] = Decision(max(ok)[2], max(ok)[1]) if ok else \
            Decision(None, None)
    return decisions


@settings(max_examples=300, deadline=None)
@given(outbound_records, inbound_records, config_versions, st.randoms(use_true_random=False))
def test_decisions_equal_the_oracle_whatever_the_reading_order(outs, ins, versions,
                                                               rnd) -> None:
    store = FakeStore(versions)
    join = join_for(store)
    outbox = Outbox()
    parts = streams(outs, ins)
    cursor = {p: 0 for p in INPUTS}
    read: list[Msg] = []

    async def feed(batch: list[Msg]) -> None:
        await join.on_records(outbox, batch)  # type: ignore[arg-type]

    async def run() -> None:
        while any(cursor[p] < len(parts[p]) for p in INPUTS):
            p = rnd.choice([p for p in INPUTS if cursor[p] < len(parts[p])])
            _, key, value = parts[p][cursor[p]]
            cursor[p] += 1
            batch = [Msg(value, key)]
            read.append(batch[0])
            if rnd.random() < 0.3:                     # progress of every partition so far
                marks = tuple((q.topic, q.partition,
                               parts[q][cursor[q] - 1][0] if cursor[q] else -1.0)
                              for q in INPUTS)
                batch.append(Msg(encode_keyed(Progress(marks))))
            if rnd.random() < 0.1 and read:            # a replay of something read before
                batch.append(rnd.choice(read))
            await feed(batch)
        done = tuple((q.topic, q.partition, 1e18) for q in INPUTS)  # caught up
        await feed([Msg(encode_keyed(Progress(done)))])

    asyncio.run(run())
    got = {}
    for value in outbox.sent:
        record = orjson.loads(value)
        if record["kind"] == "classified":
            decision = Decision(record.get("source_agent_id"), record.get("source_call_id"))
            assert got.setdefault(record["call_id"], decision) == decision
    assert got == oracle(outs, ins, versions)
    assert join.pending == {}


def test_nothing_is_decided_before_every_input_partition_reported() -> None:
    store = FakeStore([])
    join = join_for(store)
    outbox = Outbox()
    callback = encode_keyed(InboundSeen(ENV, 50.0, "received", "c", "cb", "ev", 5.0))
    some = tuple((p.topic, p.partition, 1000.0) for p in INPUTS[:3])
    asyncio.run(join.on_records(outbox, [Msg(callback, PHONE.encode()),  # type: ignore[list-item]
                                         Msg(encode_keyed(Progress(some)))]))
    assert outbox.sent == [] and join.pending
    rest = ((INPUTS[3].topic, INPUTS[3].partition, 15.0),)
    asyncio.run(join.on_records(outbox, [Msg(encode_keyed(Progress(rest)))]))  # type: ignore
    assert outbox.sent == [], "the watermark (15) has not passed the cutoff (5 + G = 15)"
    later = ((INPUTS[3].topic, INPUTS[3].partition, 15.5),)
    asyncio.run(join.on_records(outbox, [Msg(encode_keyed(Progress(later)))]))  # type: ignore
    assert len(outbox.sent) == 1 and not join.pending


class FlushedFirst(dict):  # type: ignore[type-arg]
    """A ``pending`` table that checks, at each removal, that every outcome record sent
    so far was acknowledged."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self.outbox = outbox

    def pop(self, key: Any, default: Any = None) -> Any:
        assert self.outbox.flushed == len(self.outbox.sent), \
            "a decided call left pending before its outcome records were acknowledged"
        return super().pop(key, default)


def test_a_decided_call_leaves_pending_only_after_its_outcome_records_are_acked() -> None:
    """The pending row is what makes a replay publish the outcome again: removed first,
    a kill -9 before the records were acknowledged would lose them for good."""
    outbox = Outbox()
    join = join_for(FakeStore([]))
    join.pending = FlushedFirst(outbox)
    callback = encode_keyed(InboundSeen(ENV, 50.0, "received", "c", "cb", "ev", 5.0))
    marks = tuple((p.topic, p.partition, 100.0) for p in INPUTS)
    asyncio.run(join.on_records(outbox, [Msg(callback, PHONE.encode()),  # type: ignore[list-item]
                                         Msg(encode_keyed(Progress(marks)))]))
    assert len(outbox.sent) == 1 and outbox.flushed == 1 and not join.pending


class OnePartitionOwned(AllPartitions):
    """Two partitions: contacts by their last phone digit; this worker owns only 0."""

    def __init__(self) -> None:
        super().__init__(2)

    def of(self, key: bytes) -> int:
        return int(key[-1:]) % 2

    def owned(self, partition: int) -> bool:
        return partition == 0


async def test_idle_contacts_are_pruned_only_on_owned_partitions() -> None:
    s = Settings(recency_window_seconds=int(W), match_grace_seconds=G,
                 allowed_lateness_seconds=10, dedup_ttl_seconds=10**7)
    old = [[0.0, 1.0, "a", "o1"]]
    history = {b"e\x1f+0": old, b"e\x1f+1": old}
    join = Join(s, TopicNames.from_settings(s), FakeStore([]), history, {},  # type: ignore
                Watermarks(INPUTS), OnePartitionOwned())
    join.newest_callback.update({0: 10_000.0, 1: 10_000.0})
    assert await join.prune_idle() == 1
    assert list(history) == [b"e\x1f+1"], "partition 1's contact is another worker's to prune"


def test_calls_pending_in_a_recovered_table_are_decided() -> None:
    """A join that starts on tables another worker filled (a rebalance, a restart)
    indexes their pending calls: nothing waits for a new record of the same contact."""
    store = FakeStore([])
    before = join_for(store)
    callback = encode_keyed(InboundSeen(ENV, 50.0, "received", "c", "cb", "ev", 5.0))
    asyncio.run(before.on_records(Outbox(), [Msg(callback, PHONE.encode())]))  # type: ignore
    after = join_for(store)
    after.history, after.pending = before.history, before.pending
    outbox = Outbox()
    marks = tuple((p.topic, p.partition, 100.0) for p in INPUTS)
    asyncio.run(after.on_records(outbox, [Msg(encode_keyed(Progress(marks)))]))  # type: ignore
    assert len(outbox.sent) == 1 and not after.pending


DONE = tuple((q.topic, q.partition, 1e18) for q in INPUTS)
"""Progress past every cutoff on every input partition."""


class Ticker:
    """Counts how often the event loop got back to other tasks while the block ran."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Future[None] | None = None

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.ensure_future(self._tick())
        await asyncio.sleep(0)
        self.ticks = 0
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task
        self._task.cancel()


async def test_a_backlog_coming_due_at_once_is_decided_in_slices_that_yield() -> None:
    """3,000 callbacks (three per contact) due at one progress record: every one decided
    once, the pending table emptied, and the loop given back between slices of
    ``DECIDE_SLICE`` contacts."""
    from stream_app.core.pipeline.join import DECIDE_SLICE

    store = FakeStore([])
    join = join_for(store)
    outbox = Outbox()
    batch = [Msg(encode_keyed(InboundSeen(ENV, 100.0, "received", f"call{i}", "cb1",
                                          f"ev{i}", 50.0)), f"+55119{i // 3:08d}".encode())
             for i in range(3000)]
    await join.on_records(outbox, batch)  # type: ignore[arg-type]
    async with Ticker() as ticker:
        await join.on_records(outbox, [Msg(encode_keyed(Progress(DONE)))])  # type: ignore[arg-type]
    classified = [orjson.loads(v)["call_id"] for v in outbox.sent
                  if orjson.loads(v)["kind"] == "classified"]
    assert sorted(classified) == sorted(f"call{i}" for i in range(3000))
    assert join.pending == {}
    assert ticker.ticks >= 1000 // DECIDE_SLICE - 1


async def test_reading_the_rows_of_a_backlog_due_at_once_gives_the_loop_back() -> None:
    """2,500 contacts due at one progress record: their pending rows are read in slices
    too (the bench's 0.26-0.64 s block was this read, all rows in one step)."""
    from stream_app.core.pipeline.join import DECIDE_SLICE, SCAN_SLICE

    join = join_for(FakeStore([]))
    outbox = Outbox()
    batch = [Msg(encode_keyed(InboundSeen(ENV, 100.0, "received", f"call{i}", "cb1",
                                          f"ev{i}", 50.0)), f"+55119{i:08d}".encode())
             for i in range(2500)]
    await join.on_records(outbox, batch)  # type: ignore[arg-type]
    reads_per_tick: dict[int, int] = {}
    ticker = Ticker()

    class Counted(dict):  # type: ignore[type-arg]
        def get(self, key: object, default: object = None) -> object:
            reads_per_tick[ticker.ticks] = reads_per_tick.get(ticker.ticks, 0) + 1
            return super().get(key, default)

    join.pending = Counted(join.pending)
    read_before_deciding: list[int] = []
    classify = join.store.classify

    async def counted_classify(writes: Any) -> Any:
        read_before_deciding.append(sum(reads_per_tick.values()))
        return await classify(writes)

    join.store.classify = counted_classify  # type: ignore[method-assign]
    async with ticker:
        await join.on_records(outbox, [Msg(encode_keyed(Progress(DONE)))])  # type: ignore[arg-type]
    assert len([v for v in outbox.sent if orjson.loads(v)["kind"] == "classified"]) == 2500
    assert max(reads_per_tick.values()) <= SCAN_SLICE
    # Only one slice of the backlog is alive at a time: its first decisions come after
    # one slice of rows was read, not the whole backlog's (a working set that size made
    # the garbage collector's full scans the loop's longest stall).
    assert read_before_deciding[0] <= DECIDE_SLICE


async def test_the_answered_metric_counts_each_answered_call_once() -> None:
    """Answered before or after the decision, its event re-read or redelivered: one."""
    from stream_app.observe import metrics

    def answered() -> float:
        return metrics.OUTCOMES.labels("answered")._value.get()  # type: ignore[attr-defined]

    store = FakeStore([])
    join = join_for(store)
    outbox = Outbox()
    before = answered()

    def event(call: str, kind: str, n: int) -> Msg:
        return Msg(encode_keyed(InboundSeen(ENV, 100.0, kind, call, "cb1", f"{call}-{n}",
                                            50.0)), PHONE.encode())

    early = [event("early", "received", 0), event("early", "answered", 1)]
    await join.on_records(outbox, early + early)  # type: ignore[arg-type]
    done = tuple((q.topic, q.partition, 1e18) for q in INPUTS)
    await join.on_records(outbox, [event("late", "received", 0),  # type: ignore[arg-type]
                                   Msg(encode_keyed(Progress(done)))])
    late = [event("late", "answered", 1), event("late", "answered", 2)]
    await join.on_records(outbox, late + late)  # type: ignore[arg-type]
    await join.on_records(outbox, early + late)  # type: ignore[arg-type]  # a replay
    assert answered() - before == 2
