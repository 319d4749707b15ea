"""Patch: a local store ahead of its changelog is wiped and recovered
(``Recovery._build_offsets``).

Faust raises ``ConsistencyError`` (and the worker crash-loops until someone deletes the
directory by hand) when a table partition's persisted offset in the local RocksDB store
is at or past the end of its changelog: the topics were deleted and recreated, or the
cluster was restored from a backup. Kafka Streams wipes such a task's store and restores
it from the changelog; so does this. Before Faust turns the persisted offsets into the
offsets its recovery reads from, each partition whose persisted offset is not below its
changelog's end offset has its local database closed and deleted and its offset
forgotten, so the recovery reads that changelog partition from its start (WARNING log,
``callback_stats_stale_stores_wiped_total``). A store that is behind its changelog is
fine as it is: the recovery reads the rest.

Offsets cannot tell a recreated changelog that has grown past the old persisted offset
from the old one; nor can Kafka Streams' checkpoints. The store's path names the Kafka
cluster and the app (``worker/app.py``), so a worker pointed at another cluster never
opens a foreign store.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Callable, Coroutine, MutableMapping
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.recovery import Recovery
from faust.types import TP

from stream_app.observe import metrics
from stream_app.patching import Patch, Signature

logger = logging.getLogger(__name__)

BuildOffsets = Callable[..., Coroutine[Any, Any, None]]


def wiping_stale_stores(original: BuildOffsets) -> BuildOffsets:
    @functools.wraps(original)
    async def build_offsets(self: Recovery, consumer: Any, tps: set[TP],
                            destination: MutableMapping[TP, int | None], title: str) -> None:
        persisted = {tp: destination.get(tp) for tp in tps}
        if any(offset is not None for offset in persisted.values()):
            ends = await consumer.highwaters(*tps)
            for tp in sorted(stale_partitions(persisted, ends)):
                wipe(self.tp_to_table[tp], tp, persisted[tp], ends.get(tp))
                destination[tp] = None
        await original(self, consumer, tps, destination, title)

    return build_offsets


def stale_partitions(persisted: dict[TP, int | None], ends: dict[TP, int | None]
                     ) -> set[TP]:
    """Partitions whose persisted offset (the last changelog offset applied locally) is
    not below the changelog's end offset (one past its last record)."""
    return {tp for tp, offset in persisted.items()
            if offset is not None and ends.get(tp) is not None and offset >= int(ends[tp] or 0)}


def wipe(table: Any, tp: TP, persisted: int | None, end: int | None) -> None:
    """Close and delete ``table``'s local database of ``tp``'s partition."""
    store = table.data
    logger.warning("table %s, partition %d: the local store is ahead of its changelog "
                   "(persisted offset %s, changelog ends at %s; topics recreated or a "
                   "cluster restored?): wiping it and recovering from the changelog",
                   table.name, tp.partition, persisted, end)
    metrics.STALE_STORES.labels(table.name).inc()
    if not isinstance(store, RocksDBStore):
        return
    db = store._dbs.pop(tp.partition, None)
    if db is not None:
        db.close()
    store._key_index.clear()
    shutil.rmtree(store.partition_path(tp.partition), ignore_errors=True)


PATCH = Patch(
    "stale local store",
    Signature(Recovery, "_build_offsets", ("self", "consumer", "tps", "destination", "title")),
    wiping_stale_stores)

REQUIRES = (Signature(RocksDBStore, "partition_path", ("self", "partition")),)
