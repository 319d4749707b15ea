"""Where a contact's state lives, and whether this worker may write it now: what the
join (``join.py``) asks of the worker (``worker/tables.KeyedPartitions``), and the
all-in-one-process answer the unit tests use."""

from __future__ import annotations

import zlib
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Partitions(Protocol):
    """Where a contact's state lives, and whether this worker may write it now.

    Invariant the worker must keep: a contact's rows sit on the changelog partition with
    the number of its keyed partition (``of``), so the worker that reads a contact's
    keyed records is the one that recovered its state.
    """

    def of(self, key: bytes) -> int:
        """The keyed partition of a contact."""
        ...

    def owned(self, partition: int) -> bool:
        """Whether this worker consumes ``partition`` now."""
        ...

    def writing(self, partition: int) -> AbstractContextManager[None]:
        """The scope every table write for ``partition`` happens in; raises
        ``PartitionLost`` (batches.py) if the partition went to another worker."""
        ...

    def epoch(self) -> int:
        """Changes whenever the owned partitions (and so the tables' contents) may have."""
        ...


class AllPartitions:
    """One process owns every partition (unit tests, plain dicts)."""

    def __init__(self, count: int = 1) -> None:
        self.count = count

    def of(self, key: bytes) -> int:
        return zlib.crc32(key) % self.count

    def owned(self, partition: int) -> bool:
        return True

    def writing(self, partition: int) -> AbstractContextManager[None]:
        return nullcontext()

    def epoch(self) -> int:
        return 0
