"""Where a contact's state lives, who may write it, and the table it is read from.

:class:`KeyedTable` reads and writes a row in its partition's RocksDB database only
(Faust asks every partition's, twice) and sends the changelog records of a batch
together, acknowledged before the batch is (Faust's 100-record producer buffer throttled
every incoming message). Not a patch: it uses the store's per-partition access, checked
at start (:data:`REQUIRES`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, cast

import orjson
from faust.stores.rocksdb import Store as RocksDBStore
from faust.transport.drivers.aiokafka import Producer as KafkaProducer
from faust.types import TP

from stream_app.core.domain import jsonbytes
from stream_app.core.kafka.delivery import KafkaBatches, Producer, Record
from stream_app.core.kafka.topics import KeyedPartitioner
from stream_app.core.pipeline.batches import PartitionLost
from stream_app.patching import Incompatible, Signature

REQUIRES = (
    Signature(RocksDBStore, "_db_for_partition", ("self", "partition")),
    Signature(RocksDBStore, "set_persisted_offset", ("self", "tp", "offset")),
    Signature(KafkaProducer, "_ensure_producer", ("self",)),
)


def processed_base(app: Any, tp: TP) -> int | None:
    """The offset this worker resumed ``tp`` from (the commit base ``perform_seek``
    recorded), or None before it was assigned and sought."""
    base = app.consumer._committed_offset.get(tp)
    return None if base is None else int(base)


# -- where a contact's state lives, and who may write it -----------------------------------

class KeyedPartitions:
    """The join's :class:`~stream_app.core.domain.partitions.Partitions` in a Faust worker.

    The tables use ``use_partitioner`` with raw key bytes, the very bytes the keyed
    records carry, so the producer's partitioner puts a contact's changelog rows on the
    partition number of its keyed records (a JSON-serialised key would hash elsewhere and
    hand the state to whichever worker owns *that* number). ``of`` is that partitioner.
    """

    def __init__(self, app: Any, topic: str, count: int) -> None:
        self.app = app
        self.topic = topic
        self.of = KeyedPartitioner(count)
        self._assigned: tuple[int | None, frozenset[int]] = (None, frozenset())

    def owned(self, partition: int) -> bool:
        generation = self.app.consumer_generation_id
        if self._assigned[0] != generation:
            mine = frozenset(tp.partition for tp in self.app.consumer.assignment()
                             if tp.topic == self.topic)
            self._assigned = (generation, mine)
        return partition in self._assigned[1]

    def epoch(self) -> int:
        return int(self.app.consumer_generation_id)

    def still_writable(self, partition: int) -> bool:
        """This worker owns ``partition`` and no rebalance has started."""
        return bool(self.app.flow_control.is_active()) and self.owned(partition)

    @contextmanager
    def writing(self, partition: int) -> Iterator[None]:
        """Refuse (:class:`PartitionLost`) once a rebalance started or gave the partition
        away: the check and the writes run without an ``await`` between them, so a write
        either precedes the revocation (whose ``send_changes`` sends it before the new
        owner recovers, :class:`KeyedTable`) or does not happen."""
        if not self.still_writable(partition):
            raise PartitionLost(f"{self.topic}[{partition}] is no longer this worker's")
        yield


class KeyedTable(MutableMapping[bytes, Any]):
    """A Faust table read and written the short way, its changelog sent per batch.

    Reads: ``Table.get`` on a RocksDB store with ``use_partitioner`` asks every
    partition's database it holds, twice (``key in store``, then ``store[key]``), and a
    missing key costs a ``KeyError`` on top. A contact's row is only ever in the database
    of its keyed partition (:class:`KeyedPartitions`), so that is the only one read.

    Values are JSON, as Faust's codec writes them for these tables, but encoded and
    decoded with orjson (Faust's registry also walks every decoded payload looking for
    model namespaces).

    Writes: ``Table.__setitem__`` queues a changelog record in Faust's producer buffer
    (100 records, then every incoming message waits for it to ebb) and writes the store
    and, once sent, the persisted offset, per write. Here a write goes to the store at
    once and its changelog record waits in :attr:`unsent` (the latest value per key);
    :meth:`send_changes` sends them, waits for the broker, and records the persisted
    offsets. Invariants, with the worker's help (``batch_agent.py``):

    - a batch is acked only after its changes were sent and acknowledged (the contacts
      step ends with ``send_changes``), like every other record it causes;
    - a revocation sends what is unsent before the partitions go (``on_partitions_revoked``),
      as Faust flushes its buffer, so the next owner recovers every write made here;
    - records for one key leave in the order they were written (one sender at a time);
    - the persisted offset only grows past records the local store holds, and is not
      touched for a partition this worker no longer owns (a lower one is always safe:
      recovery replays more).
    """

    def __init__(self, table: Any, partitions: KeyedPartitions) -> None:
        if table.value_serializer != "json":
            raise Incompatible(f"table {table.name}: KeyedTable needs JSON values")
        self.table = table
        self.partitions = partitions
        self.of = partitions.of
        self.unsent: dict[bytes, tuple[int, bytes | None]] = {}
        self.sending = asyncio.Lock()

    def get(self, key: bytes, default: Any = None) -> Any:
        store = self.table.data
        if not isinstance(store, RocksDBStore):
            return self.table.get(key, default)
        raw = store._db_for_partition(self.of(key)).get(key)
        return default if raw is None else orjson.loads(raw)

    def __setitem__(self, key: bytes, value: Any) -> None:
        """Write ``key`` (inside ``KeyedPartitions.writing`` of its partition)."""
        store, partition = self.table.data, self.of(key)
        raw = jsonbytes.dumps(value)
        if isinstance(store, RocksDBStore):
            store._db_for_partition(partition).put(key, raw)
        else:
            store[key] = value
        self.unsent[key] = (partition, raw)

    def __delitem__(self, key: bytes) -> None:
        store, partition = self.table.data, self.of(key)
        if isinstance(store, RocksDBStore):
            store._db_for_partition(partition).delete(key)
        else:
            store.pop(key, None)
        self.unsent[key] = (partition, None)

    def pop(self, key: bytes, default: Any = None) -> Any:
        value = self.get(key)
        if value is None:
            return default
        del self[key]
        return value

    def __getitem__(self, key: bytes) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[bytes]:
        """RocksDB iterators read a snapshot, so a scan may yield while rows are written;
        an in-memory store is a dict, iterated over a copy of its keys for the same
        reason."""
        if isinstance(self.table.data, RocksDBStore):
            return iter(self.table)
        return iter(list(self.table))

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> Any:
        return self.table.items()

    async def send_changes(self, producer: Producer) -> None:
        """Send the changelog records of every write so far and wait for the broker.

        On failure the records not superseded by a newer write go back to
        :attr:`unsent` (the caller retries the batch)."""
        async with self.sending:
            changes, self.unsent = self.unsent, {}
            if not changes:
                return
            topic = self.table.changelog_topic.get_topic_name()
            by_partition: dict[int, list[Record]] = {}
            for key, (partition, raw) in changes.items():
                by_partition.setdefault(partition, []).append(Record(key, raw))
            try:
                sent = {partition: await producer.send_records(topic, partition, records)
                        for partition, records in by_partition.items()}
                newest = dict(zip(sent, await asyncio.gather(*sent.values()), strict=True))
            except BaseException:
                for key, change in changes.items():
                    self.unsent.setdefault(key, change)
                raise
            for partition, offset in newest.items():
                if self.partitions.still_writable(partition):
                    self.table.data.set_persisted_offset(TP(topic, partition), offset)


def kafka_producer(producer: Any) -> KafkaBatches:
    """The aiokafka producer behind Faust's (``delivery.Sender`` sends batches with it;
    Faust's own ``send`` takes one record at a time)."""
    return cast(KafkaBatches, producer._ensure_producer())
