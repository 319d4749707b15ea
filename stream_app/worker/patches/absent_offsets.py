"""Patch: every fetch says which offsets it read past without a record
(aiokafka's ``FetchResult.getall``).

A ``read_committed`` fetch skips commit and abort markers and the records of aborted
transactions, and a compacted log has offsets without records; aiokafka moves the
consumer's position past them (its ``next_fetch_offset``) but hands the application only
the records. Without this patch the worker could not tell such an offset from a message
Faust lost (``worker/holes.py``): it waited on every gap, fetched it again three times,
then asked the broker — about 8 s per marker — and committed only up to the first one.

The patch records, for each partition drained, the range the fetch read and the offsets
it yielded; the rest of the range is absent (:class:`~stream_app.core.domain.order.AbsentOffsets`,
:data:`ABSENT`). It runs in Faust's consumer thread, before the messages reach an agent,
so an agent that meets a gap finds it already explained. A drain whose records fill its
range (plain input) records nothing and costs one comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka.consumer.fetcher import FetchResult, PartitionRecords

from stream_app.core.domain.order import AbsentOffsets
from stream_app.patching import Patch, Signature

ABSENT = AbsentOffsets()
"""This process's knowledge of absent offsets, shared by the admission, the commit, the
hole timer and the progress emitter."""

GetAll = Callable[..., list[Any]]


def recording_absent(original: GetAll, absent: AbsentOffsets = ABSENT) -> GetAll:
    def getall(self: FetchResult, max_records: int | None = None) -> list[Any]:
        records = self._partition_records
        if records is None:
            return original(self, max_records)
        if not self.check_assignment(self._topic_partition):
            return []  # what aiokafka answers: not assigned, paused, or sought elsewhere
        start = records.next_fetch_offset
        got = original(self, max_records)
        stop = records.next_fetch_offset
        if stop - start != len(got):
            absent.read(self._topic_partition, start, stop, [m.offset for m in got])
        return got

    return getall


ALSO_ASSIGNED = ((PartitionRecords, ("next_fetch_offset",)),)
"""What the replacement reads of another class than its target's."""


PATCH = Patch("absent offsets", Signature(FetchResult, "getall", ("self", "max_records")),
              recording_absent, assigned=("_partition_records", "_topic_partition"))
