"""Each faust-streaming patch against a consumer double: every test fails without its patch."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.delivery import Record
from stream_app.worker import faust_compat

faust_compat.install()


def consumer_double(committed: dict[TP, int | None] | None = None, generation: int = 1,
                    flow_active: bool = True) -> Any:
    app = SimpleNamespace(
        consumer_generation_id=generation,
        flow_control=SimpleNamespace(is_active=lambda: flow_active),
        topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
        tables=SimpleNamespace(changelog_topics={"app-history-changelog"}),
    )
    double = SimpleNamespace(
        app=app,
        _committed_offset=defaultdict(lambda: None, committed or {}),
        _acked=defaultdict(list), _acked_index=defaultdict(set), _gap=defaultdict(list),
        _unacked_messages=set(), _n_acked=0, _waiting_for_ack=None,
    )
    return double


class Msg(SimpleNamespace):
    __hash__ = object.__hash__


def message(offset: int, generation: int | None = 1) -> Any:
    tp = TP("in", 0)
    return Msg(tp=tp, offset=offset, topic=tp.topic, acked=False, generation_id=generation)


# -- 1. stale acks --------------------------------------------------------------------

def test_an_ack_from_an_earlier_generation_is_refused() -> None:
    consumer = consumer_double(generation=2)
    assert Consumer.ack(consumer, message(7, generation=1)) is False
    assert consumer._acked[TP("in", 0)] == []


def test_an_ack_while_flow_is_suspended_is_refused() -> None:
    consumer = consumer_double(flow_active=False)
    assert Consumer.ack(consumer, message(7)) is False
    assert consumer._acked[TP("in", 0)] == []


def test_a_current_ack_is_recorded() -> None:
    consumer = consumer_double()
    assert Consumer.ack(consumer, message(7)) is True
    assert consumer._acked[TP("in", 0)] == [7]


# -- 2. read offsets ------------------------------------------------------------------

def test_the_read_offset_map_remembers_nothing() -> None:
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
    from mode.utils.mocks import MagicMock

    consumer = AIOKafkaConsumer(MagicMock(), callback=MagicMock(),
                                on_partitions_revoked=MagicMock(),
                                on_partitions_assigned=MagicMock())
    assert isinstance(consumer._read_offset, faust_compat.NoReadOffsets)
    consumer._read_offset[TP("in", 0)] = 500
    assert consumer._read_offset[TP("in", 0)] is None


# -- 3. seek on assignment ------------------------------------------------------------

TP0 = TP("in", 0)


def test_partitions_without_a_commit_are_sought_to_their_log_start() -> None:
    fresh, zero, known = TP("in", 0), TP("in", 1), TP("in", 2)
    changelog = TP("app-history-changelog", 0)
    consumer = consumer_double()
    sought: dict[TP, int] = {}

    async def seek_to_committed() -> dict[TP, int | None]:
        return {fresh: None, zero: 0, known: 57, changelog: None}

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return {tp: 5 if tp == fresh else 0 for tp in tps}

    async def seek(tp: TP, offset: int) -> None:
        sought[tp] = offset

    consumer.seek_to_committed = seek_to_committed
    consumer.earliest_offsets = earliest_offsets
    consumer._seek = seek
    asyncio.run(Consumer.perform_seek(consumer))
    assert sought == {fresh: 5, zero: 0}
    assert dict(consumer._committed_offset) == {fresh: 5, zero: 0, known: 57}


class SlowBroker:
    """A consumer's view of the broker for seeks: ``seek_to_committed`` reads the
    committed offset and seeks to it, like aiokafka's, then waits for its call's answer
    (the reply crossing back from the consumer thread) before returning."""

    def __init__(self, committed: int) -> None:
        self.committed = committed
        self.position: int | None = None
        self.answers = [asyncio.Event(), asyncio.Event()]
        self.inside = asyncio.Event()
        self.calls = 0

    def consumer(self) -> Any:
        consumer = consumer_double()

        async def seek_to_committed() -> dict[TP, int]:
            answer = self.answers[self.calls]
            self.calls += 1
            offset = self.position = self.committed
            self.inside.set()
            await answer.wait()
            return {TP0: offset}

        consumer.seek_to_committed = seek_to_committed
        return consumer


def test_concurrent_seeks_leave_position_and_base_from_the_same_call() -> None:
    """The fetch loop's seek and the recovery's interleaved: the partition ended at the
    newer committed offset with the older one as its base, never committed again, and
    (idle) never counted as caught up — the watermarks stalled."""
    async def run() -> None:
        broker = SlowBroker(committed=40)
        consumer = broker.consumer()
        first = asyncio.ensure_future(Consumer.perform_seek(consumer))  # the fetch loop
        await broker.inside.wait()
        broker.committed = 60  # the group commits meanwhile
        second = asyncio.ensure_future(Consumer.perform_seek(consumer))  # the recovery
        for _ in range(5):
            await asyncio.sleep(0)
        broker.answers[1].set()  # the newer call's reply comes back first
        for _ in range(5):
            await asyncio.sleep(0)
        broker.answers[0].set()
        await asyncio.gather(first, second)
        assert broker.position == consumer._committed_offset[TP0] == 60

    asyncio.run(run())


def test_a_cancelled_seek_still_records_its_base() -> None:
    async def run() -> None:
        broker = SlowBroker(committed=40)
        consumer = broker.consumer()
        seeking = asyncio.ensure_future(Consumer.perform_seek(consumer))
        await broker.inside.wait()
        seeking.cancel()
        broker.answers[0].set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert broker.position == consumer._committed_offset[TP0] == 40

    asyncio.run(run())


# -- 4. commit only a contiguous run from the base ------------------------------------


def new_offset(base: int | None, acked: list[int]) -> tuple[int | None, list[int]]:
    consumer = consumer_double({TP0: base} if base is not None else {})
    consumer._acked[TP0] = list(acked)
    consumer._acked_index[TP0] = set(acked)
    return Consumer._new_offset(consumer, TP0), consumer._acked[TP0]


@pytest.mark.parametrize(("base", "acked", "expected"), [
    (None, list(range(300, 400)), None),   # no base known: faust committed 400
    (0, list(range(300, 400)), None),      # base 0 is falsy: faust committed 400
    (100, [101, 102], None),               # a one-message hole at the head: faust said 103
    (100, [100, 101, 102, 104], 103),
    (100, [90, 99, 100, 101], 102),        # acks below the base are dropped
    (100, [], None),
])
def test_commit_stops_at_the_first_unacked_offset(base: int | None, acked: list[int],
                                                  expected: int | None) -> None:
    assert new_offset(base, acked)[0] == expected


@given(st.integers(0, 50), st.sets(st.integers(0, 80)))
def test_every_offset_below_the_commit_was_acked(base: int, acked: set[int]) -> None:
    """Oracle: the commit is the first offset from the base that was not acked."""
    got, _ = new_offset(base, sorted(acked))
    first_missing = next(o for o in range(base, 200) if o not in acked)
    assert got == (None if first_missing == base else first_missing)


# -- the install check ----------------------------------------------------------------

def test_an_unsupported_version_is_refused() -> None:
    with pytest.raises(faust_compat.IncompatibleFaust, match=r"0\.16\.0 is not supported"):
        faust_compat.check("0.16.0")


def test_a_changed_signature_is_refused() -> None:
    class Changed:
        def ack(self, message: Any, extra: int) -> bool:
            return True

    with pytest.raises(faust_compat.IncompatibleFaust, match="ack"):
        faust_compat.check("0.15.3", Changed)


def test_the_installed_consumer_passes_the_attribute_check() -> None:
    faust_compat._check_assigned("0.15.3", Consumer,
                                 ("_committed_offset", "_acked", "_acked_index"))


def test_an_attribute_no_longer_assigned_is_refused_not_matched_by_a_longer_name() -> None:
    class Renamed:
        def __init__(self) -> None:
            self._acked_index: dict[Any, Any] = {}  # "_acked" is only a prefix here

    with pytest.raises(faust_compat.IncompatibleFaust, match=r"Consumer\._acked is gone"):
        faust_compat._check_assigned("0.15.3", Renamed, ("_acked",))


def test_a_consumer_without_an_init_of_its_own_is_refused_not_a_type_error() -> None:
    class NoInit:
        pass

    with pytest.raises(faust_compat.IncompatibleFaust, match="_acked is gone"):
        faust_compat._check_assigned("0.15.3", NoInit, ("_acked",))


# -- where a contact's state lives ------------------------------------------------------

def keyed_partitions(assigned: set[TP], flow_active: bool = True, generation: int = 1) -> Any:
    app = SimpleNamespace(consumer_generation_id=generation,
                          flow_control=SimpleNamespace(is_active=lambda: flow_active),
                          consumer=SimpleNamespace(assignment=lambda: assigned))
    return faust_compat.KeyedPartitions(app, "keyed", 4)


def test_a_contacts_state_partition_is_the_producers_choice_for_its_key_bytes() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    partitions = keyed_partitions(set())
    for key in (b"env\x1f+5511900000000", b"env\x1f+5511900000001", b"other\x1f+1"):
        assert partitions.of(key) == DefaultPartitioner()(key, [0, 1, 2, 3], [0, 1, 2, 3])


def test_writes_for_an_owned_partition_go_through() -> None:
    partitions = keyed_partitions({TP("keyed", 2), TP("in", 3)})
    assert partitions.owned(2) and not partitions.owned(3)
    with partitions.writing(2):
        pass


@pytest.mark.parametrize("assigned,flow_active", [({TP("keyed", 1)}, True),
                                                  ({TP("keyed", 2)}, False)])
def test_writes_for_a_lost_partition_or_during_a_rebalance_are_refused(
        assigned: set[TP], flow_active: bool) -> None:
    from stream_app.core.batches import PartitionLost

    partitions = keyed_partitions(assigned, flow_active)
    with pytest.raises(PartitionLost), partitions.writing(2):
        pytest.fail("the write ran")


class HoleClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hole_double(base: int | None, acked: list[int], end: int = 200
                ) -> tuple[Any, list[dict[TP, int]]]:
    consumer = consumer_double({TP0: base} if base is not None else {})
    consumer._acked[TP0] = list(acked)
    consumer._acked_index[TP0] = set(acked)
    consumer.app.rebalancing = False
    sought: list[dict[TP, int]] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.append(dict(partitions))

    consumer._thread = SimpleNamespace(seek_wait=seek_wait)
    consumer.assignment = lambda: {TP0, TP("app-history-changelog", 0)}
    consumer.highwater = lambda tp: end
    return consumer, sought


async def check_holes(consumer: Any, clock: HoleClock, seconds: float) -> None:
    clock.now += seconds
    faust_compat.repair_holes(consumer)
    for _ in range(10):  # the re-fetch task runs to its end (its seek is a task too)
        await asyncio.sleep(0)


def test_a_hole_at_the_head_is_fetched_again_from_the_base(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Offsets 100..109 never reached an agent (acks start at 110): without the repair
    the commit stays at 100 for good and the messages in the hole are never processed."""
    clock = HoleClock()
    monkeypatch.setattr(faust_compat, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(100, list(range(110, 120)))
        assert Consumer._new_offset(consumer, TP0) is None
        await check_holes(consumer, clock, 0)
        await check_holes(consumer, clock, faust_compat.HOLE_GRACE_SECONDS - 1)
        assert sought == [], "a hole younger than the grace period may still close"
        await check_holes(consumer, clock, 2)
        assert sought == [{TP0: 100}]
        await check_holes(consumer, clock, 1)
        assert sought == [{TP0: 100}], "one re-fetch per grace period"

    asyncio.run(run())


def test_a_hole_at_the_tail_is_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing acked, the log ends at 200, the base stays at 150: the tail never came."""
    clock = HoleClock()
    monkeypatch.setattr(faust_compat, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(150, [], end=200)
        await check_holes(consumer, clock, 0)
        await check_holes(consumer, clock, faust_compat.HOLE_GRACE_SECONDS + 1)
        assert sought == [{TP0: 150}]

        caught_up, idle = hole_double(200, [], end=200)
        await check_holes(caught_up, clock, 0)
        await check_holes(caught_up, clock, 60)
        assert idle == []

    asyncio.run(run())


def test_a_partition_without_a_base_is_sought_as_a_recovery_would(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recovery's seek never ran (no base): no commit, and the input never counts as
    caught up, so the join decides nothing."""
    clock = HoleClock()
    monkeypatch.setattr(faust_compat, "_now", clock)

    async def run() -> None:
        consumer, _ = hole_double(None, [])

        async def seek_to_committed() -> dict[TP, int]:
            return {TP0: 100}

        consumer.seek_to_committed = seek_to_committed
        await check_holes(consumer, clock, 0)
        await check_holes(consumer, clock, faust_compat.HOLE_GRACE_SECONDS + 1)
        assert consumer._committed_offset[TP0] == 100

    asyncio.run(run())


def test_no_refetch_for_a_closing_hole_a_new_generation_or_a_moving_base(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = HoleClock()
    monkeypatch.setattr(faust_compat, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(100, [101, 102])
        await check_holes(consumer, clock, 0)
        consumer.app.consumer_generation_id = 2  # a rebalance: its recovery seeks
        await check_holes(consumer, clock, 60)
        consumer._committed_offset[TP0] = 103  # committed meanwhile
        consumer._acked[TP0] = [103, 104]
        await check_holes(consumer, clock, 60)
        await check_holes(consumer, clock, 60)
        assert sought == []

    asyncio.run(run())


def test_a_gap_in_the_log_is_left_after_a_few_refetches(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    clock = HoleClock()
    monkeypatch.setattr(faust_compat, "_now", clock)

    async def run() -> None:
        consumer, sought = hole_double(100, [105])
        for _ in range(20):
            await check_holes(consumer, clock, 30)
        assert len(sought) == faust_compat.HOLE_REPAIRS

    asyncio.run(run())
    assert sum("after 3 re-fetches" in r.getMessage() for r in caplog.records) == 1


# -- 5. no task per message ----------------------------------------------------------------

def drain_double(callback: Any, wait_first: Any) -> Any:
    """A consumer whose one fetch returns three messages, then stops."""
    stopped, fetcher_stopped = asyncio.Event(), asyncio.Event()
    messages = [message(offset) for offset in range(3)]

    async def batch() -> Any:
        for m in messages:
            yield m.tp, m
        stopped.set()

    async def no_sleep(_: float) -> None:
        return None

    double = consumer_double()
    double.__dict__.update(
        getmany=lambda timeout: batch(), _stopped=stopped, should_stop=False,
        diag=SimpleNamespace(set_flag=lambda f: None, unset_flag=lambda f: None),
        sleep=no_sleep, _commit_every=None, suspend_flow=asyncio.Event(), callback=callback,
        wait_first=wait_first, consumer_stopped_errors=(), _read_offset=defaultdict(lambda: None),
        transport=SimpleNamespace(app=SimpleNamespace(should_stop=False)),
        log=SimpleNamespace(exception=lambda *args: None, dev=lambda *args: None))
    double.app.topics = SimpleNamespace(acks_enabled_for=lambda topic: True)
    return double, SimpleNamespace(_stopped=fetcher_stopped), messages


def test_a_message_delivered_without_waiting_costs_no_task() -> None:
    delivered: list[Any] = []

    async def callback(m: Any) -> None:
        delivered.append(m)

    async def wait_first(*coros: Any) -> None:
        raise AssertionError("wait_first (two tasks) for a delivery that never waits")

    async def run() -> None:
        double, fetcher, messages = drain_double(callback, wait_first)
        await Consumer._drain_messages(double, fetcher)
        assert delivered == messages

    asyncio.run(run())


def test_a_delivery_that_waits_finishes_under_wait_first_and_stops_on_suspension() -> None:
    async def run() -> None:
        room = asyncio.get_running_loop().create_future()
        delivered: list[int] = []
        cancelled: list[int] = []

        async def callback(m: Any) -> None:
            try:
                await room  # a full stream buffer
            except asyncio.CancelledError:
                cancelled.append(m.offset)
                raise
            delivered.append(m.offset)

        double, _, _ = drain_double(callback, None)
        double.wait_first = lambda *coros: _first(*coros)
        waiting = asyncio.ensure_future(faust_compat.deliver(double, message(7)))
        await asyncio.sleep(0)
        room.set_result(None)
        await waiting
        assert delivered == [7]

        room = asyncio.get_running_loop().create_future()
        waiting = asyncio.ensure_future(faust_compat.deliver(double, message(8)))
        await asyncio.sleep(0)
        double.suspend_flow.set()  # a rebalance starts
        await waiting
        assert cancelled == [8] and delivered == [7]
        await faust_compat.deliver(double, message(9))
        assert delivered == [7], "nothing is delivered while the flow is suspended"

    asyncio.run(run())


async def _first(*coros: Any) -> None:
    """mode's Service.wait_first: the first to finish wins, the others are cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


# -- the slim Monitor ----------------------------------------------------------------------

def test_the_slim_monitor_keeps_only_what_faust_reads() -> None:
    monitor = faust_compat.SlimMonitor()
    tp = TP("in", 0)
    stream = SimpleNamespace(task_owner=None)
    assert monitor.on_stream_event_in(tp, 1, stream, None) is None  # type: ignore[arg-type]
    assert tp in monitor.stream_inbound_time, "Faust's stall detector reads it"
    monitor.on_stream_event_out(tp, 1, stream, None, None)  # type: ignore[arg-type]
    assert monitor.events_total == 0 and not monitor.events_by_stream


def test_a_changed_monitor_hook_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.sensors.monitor import Monitor

    monkeypatch.setattr(Monitor, "on_stream_event_in", lambda self, tp, offset: None)
    with pytest.raises(faust_compat.IncompatibleFaust, match="on_stream_event_in"):
        faust_compat.check("0.15.3")


# -- the join's partitioner and table reads --------------------------------------------------

def rocksdb_table(tmp_path: Path) -> tuple[Any, Any]:
    import faust

    app = faust.App("keyed-table-test", store="rocksdb://", datadir=str(tmp_path),
                    autodiscover=False)
    return app, app.Table("rows", partitions=4, key_type=bytes, use_partitioner=True)


class CountingDB:
    """A partition's RocksDB database that counts lookups."""

    def __init__(self, db: Any) -> None:
        self.db, self.lookups = db, 0

    def get(self, key: bytes) -> Any:
        self.lookups += 1
        return self.db.get(key)

    def key_may_exist(self, key: bytes) -> Any:
        self.lookups += 1
        return self.db.key_may_exist(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_a_keyed_table_reads_one_database_once(tmp_path: Path) -> None:
    _, table = rocksdb_table(tmp_path)
    partitions = keyed_partitions(set())
    store = table.data
    dbs = {p: CountingDB(store._db_for_partition(p)) for p in range(4)}
    store._dbs.update(dbs)
    mine, other = b"env\x1f+1", b"env\x1f+2"
    store._db_for_partition(partitions.of(mine)).put(mine, orjson.dumps([[1, 2]]))
    elsewhere = (partitions.of(other) + 1) % 4  # a stray row, not on its key's partition
    store._db_for_partition(elsewhere).put(other, orjson.dumps([[3]]))

    keyed = faust_compat.KeyedTable(table, partitions)
    assert keyed.get(mine) == [[1, 2]]
    assert keyed.get(b"env\x1f+missing") is None
    assert keyed.get(other) is None, "only the key's own partition is read"
    assert sum(db.lookups for db in dbs.values()) == 3, "one lookup per read"


class FakeProducer:
    """Faust's producer as :meth:`KeyedTable.send_changes` uses it; fails on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.fail = False

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int,
                   timestamp: Any, headers: Any) -> Any:
        if self.fail:
            raise RuntimeError("broker away")
        self.sent.append((topic, key, value, partition))
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(partition=partition, offset=len(self.sent) * 10))
        return future

    async def send_records(self, topic: str, partition: int, records: Sequence[Record]) -> Any:
        """Each record as if sent alone; resolves to the last one's offset."""
        futures = [await self.send(topic, r.key or b"", r.value, partition, None, None)
                   for r in records]
        return _last(futures)


async def _last(futures: list[Any]) -> int:
    return int((await asyncio.gather(*futures))[-1].offset)


def owned_keyed_table(tmp_path: Path) -> tuple[Any, Any, Any, FakeProducer]:
    """A RocksDB table, all 4 partitions owned, its KeyedTable and a producer."""
    _, table = rocksdb_table(tmp_path)
    partitions = keyed_partitions({TP("keyed", p) for p in range(4)})
    return table, partitions, faust_compat.KeyedTable(table, partitions), FakeProducer()


def test_writes_reach_the_store_at_once_and_the_changelog_per_batch(tmp_path: Path) -> None:
    table, partitions, keyed, producer = owned_keyed_table(tmp_path)
    a, b = b"env\x1f+1", b"env\x1f+2"
    keyed[a] = [[1]]
    keyed[a] = [[1], [2]]  # only the latest value of a key is sent
    keyed[b] = [[3]]
    assert keyed.pop(b) == [[3]] and keyed.get(b) is None
    assert keyed.get(a) == [[1], [2]] and producer.sent == [], "stored, not sent yet"

    asyncio.run(keyed.send_changes(producer))
    topic = table.changelog_topic.get_topic_name()
    assert producer.sent == [(topic, a, orjson.dumps([[1], [2]]), partitions.of(a)),
                             (topic, b, None, partitions.of(b))]
    assert keyed.unsent == {}
    assert table.data.persisted_offset(TP(topic, partitions.of(a))) == 10


def test_changes_a_failed_send_did_not_deliver_are_sent_again(tmp_path: Path) -> None:
    _, _, keyed, producer = owned_keyed_table(tmp_path)
    key = b"env\x1f+1"
    keyed[key] = [[1]]
    producer.fail = True
    with pytest.raises(RuntimeError):
        asyncio.run(keyed.send_changes(producer))
    producer.fail = False
    asyncio.run(keyed.send_changes(producer))
    assert [sent[1] for sent in producer.sent] == [key]


def test_no_persisted_offset_for_a_partition_no_longer_owned(tmp_path: Path) -> None:
    table, owner, keyed, producer = owned_keyed_table(tmp_path)
    key = b"env\x1f+1"
    keyed[key] = [[1]]
    keyed.partitions = keyed_partitions(set())  # revoked before the changes were sent
    asyncio.run(keyed.send_changes(producer))
    topic = table.changelog_topic.get_topic_name()
    assert producer.sent and table.data.persisted_offset(TP(topic, owner.of(key))) is None


def test_a_refetch_stuck_on_the_consumer_thread_gives_the_seek_lock_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A seek that never returns (the broker went away under it) must not hold the seek
    lock: the recovery's seek after the next rebalance needs it."""
    monkeypatch.setattr(faust_compat, "REFETCH_TIMEOUT_SECONDS", 0.05)

    async def run() -> None:
        consumer, _ = hole_double(100, [])

        async def never(partitions: dict[TP, int]) -> None:
            await asyncio.Event().wait()

        consumer._thread = SimpleNamespace(seek_wait=never)
        await asyncio.wait_for(faust_compat.refetch(consumer, TP0, 100, 1), 2.0)
        assert not faust_compat._seek_lock(consumer).locked()

    asyncio.run(run())


def test_one_refetch_per_partition_at_a_time() -> None:
    """Every partition stands still during an outage; re-fetches of one partition must
    not queue up behind each other."""
    async def run() -> None:
        consumer, sought = hole_double(100, [])
        release = asyncio.Event()

        async def slow(partitions: dict[TP, int]) -> None:
            sought.append(dict(partitions))
            await release.wait()

        consumer._thread = SimpleNamespace(seek_wait=slow)
        for _ in range(5):
            faust_compat.schedule_refetch(consumer, TP0, 100, 1)
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.sleep(0.01)
        assert sought == [{TP0: 100}]
        faust_compat.schedule_refetch(consumer, TP0, 100, 1)
        await asyncio.sleep(0.01)
        assert len(sought) == 2, "a new one once the first is done"

    asyncio.run(run())
