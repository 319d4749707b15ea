"""Patch: seek on assignment (``Consumer.perform_seek``).

After a rebalance faust seeks every partition to its committed offset, but aiokafka's
``seek_to_committed`` does nothing for a partition with no committed offset yet, so the
fetch position stays past the messages faust dropped when the generation changed (the
rest of a fetched batch). The patch seeks such partitions to their log start and records
that as the commit base. And the seeks run one at a time: Faust calls ``perform_seek``
from the recovery and from its fetch loop (records fetched while a rebalance stopped the
flow are dropped, and the fetch loop seeks them back), and the two calls can interleave
in the consumer thread, so a partition could end up at one call's offset with the other
call's commit base. A base below the position never commits again and, on an idle
partition, never counts as caught up: its watermark stops and the join stops deciding.
Each call now reads, seeks and records its bases under one lock, shielded from
cancellation, so the last call's offsets are both the position and the base.

The log-start seeks go through the consumer thread (``seek_wait``), like every other
consumer call. Faust's ``Consumer._seek`` calls aiokafka's ``seek`` from the calling
(main) thread, on a fetcher that lives in the consumer thread: the seek deletes the
partition's fetched records while the consumer thread may be iterating them, and
resolves that thread's futures from outside its loop. Seen here in ``stream-app bench``
(a fresh group's rebalance while records were being drained): ``KeyError:
TopicPartition(...)`` at ``del self._records[tp]`` in aiokafka's ``fetched_records``, and
the worker crashed (the same crash as robinhood/aiokafka#19).
"""

from __future__ import annotations

from faust.transport.consumer import Consumer

from stream_app.patching import Patch, Signature
from stream_app.worker.patches.seeks import perform_seek

PATCH = Patch("seek on assignment", Signature(Consumer, "perform_seek", ("self",)),
              lambda original: perform_seek, assigned=("_committed_offset",))
