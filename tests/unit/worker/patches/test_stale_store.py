"""Patch: a local store ahead of its changelog is wiped and recovered, not a crash loop."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP

from stream_app.observe import metrics
from stream_app.worker import patch_registry
from stream_app.worker.patches import stale_store

patch_registry.install()

CHANGELOG = "app-rows-changelog"


def table_with_rows(tmp_path: Path, persisted: dict[int, int]) -> Any:
    app = faust.App("stale-store-test", store="rocksdb://", datadir=str(tmp_path),
                    autodiscover=False)
    table = app.Table("rows", partitions=4, key_type=bytes, use_partitioner=True)
    for partition, offset in persisted.items():
        table.data._db_for_partition(partition).put(b"row", b'"kept?"')
        table.data.set_persisted_offset(TP(CHANGELOG, partition), offset)
    return table


async def build(table: Any, ends: dict[TP, int | None]) -> Counter[TP]:
    """Faust's offset building for ``ends``' partitions, through the patch."""
    recovery = recovery_double({tp: table for tp in ends})
    destination: Counter[TP] = Counter()
    for tp in ends:
        recovery_add(table, tp, destination)

    async def highwaters(*tps: TP) -> dict[TP, int | None]:
        return {tp: ends[tp] for tp in tps}

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return {tp: 0 for tp in tps}

    consumer = SimpleNamespace(highwaters=highwaters, earliest_offsets=earliest_offsets)
    original = stale_store.PATCH.target.owner._build_offsets
    await original(recovery, consumer, set(ends), destination, "active")
    return destination


def recovery_double(tp_to_table: dict[TP, Any]) -> Any:
    return SimpleNamespace(tp_to_table=tp_to_table, log=SimpleNamespace(info=lambda *a: None),
                           _start_offsets_logtable=lambda offsets, title: "")


def recovery_add(table: Any, tp: TP, offsets: Counter[TP]) -> None:
    """What faust's ``Recovery._add`` does at assignment: the persisted offset, or None."""
    persisted = table.persisted_offset(tp)
    offsets[tp] = persisted if persisted is not None else None  # type: ignore[assignment]


async def test_a_partition_ahead_of_its_changelog_is_wiped_and_read_from_the_start(
        tmp_path: Path) -> None:
    table = table_with_rows(tmp_path, {0: 500, 1: 40})
    before = metrics.STALE_STORES.labels("rows")._value.get()
    ahead, behind = TP(CHANGELOG, 0), TP(CHANGELOG, 1)
    offsets = await build(table, {ahead: 0, behind: 100})  # topic 0 recreated: empty
    assert offsets[ahead] == -1, "recovery reads partition 0's changelog from its start"
    assert offsets[behind] == 40, "a store behind its changelog is kept"
    assert table.data._db_for_partition(0).get(b"row") is None, "the stale rows are gone"
    assert table.data._db_for_partition(1).get(b"row") is not None
    assert table.persisted_offset(ahead) is None
    assert metrics.STALE_STORES.labels("rows")._value.get() == before + 1


async def test_a_store_exactly_at_its_changelogs_end_is_stale_one_below_is_not(
        tmp_path: Path) -> None:
    assert stale_store.stale_partitions({TP("c", 0): 9, TP("c", 1): 10, TP("c", 2): None},
                                        {TP("c", 0): 10, TP("c", 1): 10, TP("c", 2): 0}
                                        ) == {TP("c", 1)}
    assert stale_store.stale_partitions({TP("c", 0): 9}, {TP("c", 0): None}) == set(), \
        "no end known: nothing is wiped"


async def test_without_the_patch_faust_would_keep_the_stale_offset(tmp_path: Path) -> None:
    table = table_with_rows(tmp_path, {0: 500})
    unpatched = stale_store.PATCH.target.owner._build_offsets.__wrapped__
    recovery = recovery_double({})
    destination: Counter[TP] = Counter()
    recovery_add(table, TP(CHANGELOG, 0), destination)

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return {tp: 0 for tp in tps}

    await unpatched(recovery, SimpleNamespace(earliest_offsets=earliest_offsets),
                    {TP(CHANGELOG, 0)}, destination, "active")
    assert destination[TP(CHANGELOG, 0)] == 500, "then faust's consistency check raises"
