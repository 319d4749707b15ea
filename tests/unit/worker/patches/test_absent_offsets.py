"""Patch: every fetch says which offsets it read past without a record.

Each test fails without the code it covers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka.consumer.fetcher import FetchResult
from aiokafka.structs import TopicPartition

from stream_app.core.domain.order import AbsentOffsets
from stream_app.worker import patch_registry
from stream_app.worker.patches.absent_offsets import recording_absent

patch_registry.install()

TP = TopicPartition("tx-input", 0)


class Records:
    """aiokafka's PartitionRecords as the fetcher sees it: records yielded in order, the
    next fetch offset moving past markers and aborted batches."""

    def __init__(self, start: int, offsets: list[int], stop: int) -> None:
        self.next_fetch_offset = start
        self._offsets, self.stop = offsets, stop

    def __iter__(self) -> Any:
        for offset in self._offsets:
            self.next_fetch_offset = offset + 1
            yield SimpleNamespace(offset=offset)
        self.next_fetch_offset = self.stop


def fetched(start: int, offsets: list[int], stop: int, position: int | None = None
            ) -> FetchResult:
    state = SimpleNamespace(paused=False, position=start if position is None else position,
                            consumed_to=lambda offset: None)
    assignment = SimpleNamespace(active=True, state_value=lambda tp: state)
    records = Records(start, offsets, stop)
    return FetchResult(TP, assignment=assignment, partition_records=records, backoff=0)


def getall(absent: AbsentOffsets, result: FetchResult) -> list[int]:
    return [m.offset for m in recording_absent(_plain_getall, absent)(result)]


def test_markers_and_aborted_records_a_fetch_passed_are_absent() -> None:
    absent = AbsentOffsets()
    # offsets 10-11 records, 12 a commit marker, 13-15 an aborted batch, 16 its marker,
    # 17 a record, 18 a marker ending the fetch
    assert getall(absent, fetched(10, [10, 11, 17], 19)) == [10, 11, 17]
    assert absent.run_end(TP, 12) == 17
    assert absent.run_end(TP, 18) == 19
    assert absent.run_end(TP, 11) == 11


def test_a_fetch_without_records_still_says_what_it_passed() -> None:
    absent = AbsentOffsets()
    assert getall(absent, fetched(40, [], 41)) == []  # a lone commit marker
    assert absent.covers(TP, 40, 41)


def test_a_fetch_not_returned_says_nothing() -> None:
    """A rebalance or a seek moved the position: the records are not handed out, and
    nothing about the range is known."""
    absent = AbsentOffsets()
    assert getall(absent, fetched(10, [10, 12], 13, position=5)) == []
    assert absent.run_end(TP, 11) == 11


def test_the_installed_patch_records_into_the_shared_knowledge() -> None:
    from stream_app.worker.patches.absent_offsets import ABSENT

    FetchResult.getall(fetched(100, [100, 103], 104))
    assert ABSENT.covers(TP, 101, 103)


def _plain_getall(self: FetchResult, max_records: int | None = None) -> list[Any]:
    """aiokafka 0.14's ``getall`` without ``max_records`` (the registry replaced the class
    attribute before this module was imported)."""
    if not self.check_assignment(self._topic_partition) or not self.has_more():
        return []
    out = list(self._partition_records)
    self._update_position()
    self._partition_records = None
    return out
