"""The garbage collector's pauses: measured, and kept off the startup heap."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stream_app.observe.gcpauses import GcPauses, freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_every_collection_is_timed() -> None:
    pauses = GcPauses().install()
    try:
        for _ in range(1000):
            cycle: list[object] = []
            cycle.append(cycle)
        gc.collect()
        assert pauses.worst > 0
        assert pauses.total >= pauses.worst
    finally:
        pauses.uninstall()
    assert pauses._hook not in gc.callbacks
    before = pauses.total
    gc.collect()
    assert pauses.total == before


def test_the_startup_heap_is_out_of_later_collections(unfrozen: None) -> None:
    scanned_before = len(gc.get_objects())
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count() > 0
    # What a full collection scans now: only what was made after the freeze.
    assert len(gc.get_objects()) < scanned_before - frozen // 2
