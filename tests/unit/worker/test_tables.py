"""Where a contact's state lives, who may write it, and the keyed table.

Each test fails without the code it covers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP

from stream_app.core.kafka.delivery import Record
from stream_app.worker import patch_registry, tables

patch_registry.install()


# -- where a contact's state lives ------------------------------------------------------

def keyed_partitions(assigned: set[TP], flow_active: bool = True, generation: int = 1) -> Any:
    app = SimpleNamespace(consumer_generation_id=generation,
                          flow_control=SimpleNamespace(is_active=lambda: flow_active),
                          consumer=SimpleNamespace(assignment=lambda: assigned))
    return tables.KeyedPartitions(app, "keyed", 4)


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
    from stream_app.core.pipeline.batches import PartitionLost

    partitions = keyed_partitions(assigned, flow_active)
    with pytest.raises(PartitionLost), partitions.writing(2):
        pytest.fail("the write ran")


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

    keyed = tables.KeyedTable(table, partitions)
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
    return table, partitions, tables.KeyedTable(table, partitions), FakeProducer()


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
