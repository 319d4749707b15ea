"""Topic names, creation of the public topics, and the co-partitioning check.

The join is correct only if a contact's keyed events and its table changelogs live
on the same partition number: the keyed topic and every changelog must have the same
partition count. The worker checks this before it starts and refuses to run if not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from murmurhash2 import murmurhash2

from stream_app.settings import Settings

logger = logging.getLogger(__name__)

TABLES = ("history", "pending")
COMPACTED = {"cleanup.policy": "compact"}
ISOLATION = "read_committed"
"""How every input is read (the contract: only committed records count). End offsets
asked this way are last stable offsets: where the committed records end."""


KAFKA_MURMUR2_SEED = 0x9747B28C


def kafka_partition(key: bytes, count: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``count``: murmur2 of
    the key bytes (aiokafka's and the Java client's), computed by the ``murmurhash2`` C
    extension (aiokafka's is pure Python: ~4 µs a key, asked for at every record and
    every table access; this one ~0.2 µs). ``tests/unit/test_topics.py`` checks it
    against aiokafka's on random keys."""
    return (murmurhash2(key, KAFKA_MURMUR2_SEED) & 0x7FFFFFFF) % count


class KeyedPartitioner:
    """The keyed partition of a contact key: Kafka's default partitioner, so records sent
    with an explicit partition land where the producer would have put them, and a table
    row (``use_partitioner``) next to its contact's records."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, key: bytes) -> int:
        return kafka_partition(key, self.count)


class TopicLayoutError(RuntimeError):
    """Topics exist with a partitioning the join cannot work with."""


@dataclass(frozen=True)
class TopicNames:
    outbound: str
    inbound: str
    config: str
    outcomes: str
    dlq: str
    stats: str
    keyed: str
    changelogs: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        return cls(
            outbound=settings.topic_outbound,
            inbound=settings.topic_inbound,
            config=settings.topic_config,
            outcomes=settings.topic_outcomes,
            dlq=settings.topic_dlq,
            stats=settings.topic_stats,
            keyed=f"{settings.app_id}-by-contact",
            changelogs=tuple(f"{settings.app_id}-{table}-changelog" for table in TABLES),
        )

    @property
    def public(self) -> tuple[str, ...]:
        return (self.outbound, self.inbound, self.config, self.outcomes, self.dlq,
                self.stats)

    @property
    def compacted(self) -> tuple[str, ...]:
        """Topics whose latest record per key is all that counts."""
        return (self.stats, *self.changelogs)

    @property
    def copartitioned(self) -> tuple[str, ...]:
        return (self.keyed, *self.changelogs)


def bootstrap_servers(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.kafka_bootstrap.split(",") if s.strip()]


async def ensure_topics(settings: Settings) -> None:
    """Create every missing topic; fail if the join's topics are not co-partitioned.

    The internal topics are created here too, not left to Faust: a consumer that joins
    its group before Faust's own creation of the keyed topic is visible gets no
    partitions of it ("Ignoring missing topic") until its next metadata refresh, minutes
    later, and processes nothing meanwhile.
    """
    names = TopicNames.from_settings(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings),
                                request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        counts = await _partition_counts(admin, [n for n in names.copartitioned
                                                 if n in existing])
        check_copartitioned(counts, settings.partitions)
        durable = {"min.insync.replicas": str(min_insync_replicas(settings.replication_factor))}
        wanted = [NewTopic(name=n, num_partitions=settings.partitions,
                           replication_factor=settings.replication_factor,
                           topic_configs={**durable, **(COMPACTED if n in names.compacted
                                                        else {})})
                  for n in (*names.public, *names.copartitioned) if n not in existing]
        if wanted:
            await _create(admin, wanted)
            await _until_listed(admin, {t.name for t in wanted})
    finally:
        await admin.close()


async def input_partitions(settings: Settings) -> list[tuple[str, int]]:
    """Every (topic, partition) of the three input topics: what progress must cover."""
    names = TopicNames.from_settings(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings),
                                request_timeout_ms=30_000)
    await admin.start()
    try:
        counts = await _partition_counts(admin, [names.outbound, names.inbound, names.config])
    finally:
        await admin.close()
    return [(topic, p) for topic, n in sorted(counts.items()) for p in range(n)]


def min_insync_replicas(replication_factor: int) -> int:
    """2 of 3 replicas (a write survives one broker lost, and one broker may be down
    without stopping writes); 1 below 3 replicas."""
    return 2 if replication_factor >= 3 else 1


def check_copartitioned(counts: dict[str, int], expected: int) -> None:
    """The keyed topic and the changelogs keep the partition count they were created with
    (a contact's state sits in the partition numbered like its records): a worker set to
    another count refuses to start and says how to re-key."""
    wrong = {name: n for name, n in counts.items() if n != expected}
    if wrong:
        listing = ", ".join(f"{name} has {n}" for name, n in sorted(wrong.items()))
        raise TopicLayoutError(
            f"STREAM_APP_PARTITIONS={expected} but the join's topics were created with "
            f"another count ({listing}); a partition count is fixed once created: set "
            f"STREAM_APP_PARTITIONS back, or re-key with a new STREAM_APP_APP_ID (new "
            f"internal topics) and let it replay the input topics from the earliest offsets")


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    try:
        await admin.create_topics(topics)
        logger.info("created topics %s", ", ".join(t.name for t in topics))
    except TopicAlreadyExistsError:
        pass


async def _until_listed(admin: AIOKafkaAdminClient, names: set[str]) -> None:
    for _ in range(100):
        if names <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.1)
    raise TopicLayoutError(f"created topics did not appear: {', '.join(sorted(names))}")


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    if not topics:
        return {}
    described = await admin.describe_topics(topics)
    return {d["topic"]: len(d["partitions"]) for d in described}


class EndOffsets:
    """The brokers' end offsets (``read_committed``: the last stable offsets), asked on
    a client of our own.

    Faust's ``consumer.highwaters`` runs on its consumer thread and answers only after
    the fetch in flight (about a second under load); progress needs the answer now. A
    group-less consumer that never fetches answers in a round trip. Started on first use.
    """

    def __init__(self, settings: Settings) -> None:
        self.servers = bootstrap_servers(settings)
        self._client: AIOKafkaConsumer | None = None

    async def __call__(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Bounded by ``TIMEOUT`` (raises ``KafkaTimeoutError``: Kafka is away); a
        client that timed out is replaced on the next call."""
        try:
            return await asyncio.wait_for(self._ask(partitions), self.TIMEOUT)
        except TimeoutError:
            await self.close()
            raise KafkaTimeoutError("no end offsets within the timeout") from None
        except KafkaError:
            await self.close()
            raise

    TIMEOUT = 10.0

    async def _ask(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if self._client is None:
            client = AIOKafkaConsumer(bootstrap_servers=self.servers, enable_auto_commit=False,
                                      isolation_level=ISOLATION,
                                      request_timeout_ms=int(self.TIMEOUT * 1000))
            try:
                await client.start()
            except BaseException:
                await client.stop()
                raise
            self._client = client
        ends = await self._client.end_offsets([TopicPartition(t, p) for t, p in partitions])
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.stop(), self.TIMEOUT)
            except Exception as exc:  # closing a client of a vanished broker: let it go
                logger.debug("end-offsets client not closed cleanly: %r", exc)



class PartitionCounts:
    """The input topics' partitions, asked again and again on one admin client of our own.

    A client per question cost the worker ~15% CPU per event, ~45 MiB of RSS and
    event-loop stalls of a few hundred ms (its start-up fetches the metadata of every
    topic of the cluster); one kept open asks for the three topics only. Bounded like
    :class:`EndOffsets`; a client that failed is replaced on the next call."""

    TIMEOUT = 10.0

    def __init__(self, settings: Settings) -> None:
        self.servers = bootstrap_servers(settings)
        names = TopicNames.from_settings(settings)
        self.topics = [names.outbound, names.inbound, names.config]
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self) -> list[tuple[str, int]]:
        try:
            return await asyncio.wait_for(self._ask(), self.TIMEOUT)
        except (TimeoutError, KafkaError):
            await self.close()
            raise

    async def _ask(self) -> list[tuple[str, int]]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.servers,
                                        request_timeout_ms=int(self.TIMEOUT * 1000))
            try:
                await admin.start()
            except BaseException:
                await admin.close()
                raise
            self._admin = admin
        counts = await _partition_counts(self._admin, self.topics)
        return [(topic, p) for topic, n in sorted(counts.items()) for p in range(n)]

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), self.TIMEOUT)

RANGE_READ_SECONDS = 10.0
"""How long a group-less read may take to answer whether a range holds records."""


async def records_between(servers: list[str], topic: str, partition: int, start: int,
                          stop: int) -> bool | None:
    """Whether the broker holds any record with an offset in ``[start, stop)``: read from
    ``start`` by a consumer outside any group (it commits nothing and moves no one's
    position). A compacted or transactional log has offsets without records (removed
    keys, commit markers); a fetch from ``start`` answers the first record at or after
    it. None: no answer within :data:`RANGE_READ_SECONDS` (Kafka away); ask again."""
    tp = TopicPartition(topic, partition)
    client = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                              group_id=None, isolation_level=ISOLATION,
                              request_timeout_ms=int(RANGE_READ_SECONDS * 1000))
    try:
        async with asyncio.timeout(RANGE_READ_SECONDS):
            await client.start()
            client.assign([tp])
            client.seek(tp, start)
            while True:
                batch = await client.getmany(tp, timeout_ms=1000, max_records=1)
                records = batch.get(tp, [])
                if records:
                    return bool(records[0].offset < stop)
                if await client.position(tp) >= stop:
                    return False  # read past the range without a record in it
    except (TimeoutError, KafkaError) as exc:
        logger.warning("no answer whether %s[%d] holds records at %d..%d: %r", topic,
                       partition, start, stop - 1, exc)
        return None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), RANGE_READ_SECONDS)


async def cluster_id(settings: Settings) -> str:
    """The Kafka cluster's id (KRaft: the id its storage was formatted with)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings),
                                request_timeout_ms=30_000)
    await admin.start()
    try:
        found = (await admin.describe_cluster()).get("cluster_id")
    finally:
        await admin.close()
    if not found:
        raise KafkaError("the broker did not say which cluster it belongs to")
    return str(found)
