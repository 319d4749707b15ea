"""Patch: commit only a contiguous run from the base (``Consumer._new_offset``).

Faust checks for a hole at the head of the acked offsets only when the committed offset
is truthy (not for None or 0), and with an off-by-one (a hole of exactly one message is
committed over). The patch commits the run of acked offsets that starts exactly at the
committed offset, and nothing while that base is unknown. Holes that stay are fetched
again (:mod:`stream_app.worker.holes`).

A run may go on over offsets the fetch read past without a record (a transaction's
commit marker, an aborted transaction's records, a compacted key: ``absent_offsets``):
they are not holes, and a partition whose log ends in a marker commits up to its end.

Together with :mod:`.seek_on_assignment` this keeps the invariant the audit
(``stream-app audit``) checks: every offset a worker commits on an input topic was
processed.
"""

from __future__ import annotations

import bisect

from faust.transport.consumer import Consumer
from faust.types import TP
from faust.utils.functional import consecutive_numbers

from stream_app.patching import Patch, Signature
from stream_app.worker.patches.absent_offsets import ABSENT


def new_offset(self: Consumer, tp: TP) -> int | None:
    """The offset to commit for ``tp``: one past the acked run starting at the base,
    the run going on over offsets known to hold no record.

    Invariant: every offset below the returned one, from the base up, was acked or is
    known to hold no record.
    """
    acked: list[int] = self._acked[tp]
    base = self._committed_offset[tp]
    if base is None:
        return None
    acked.sort()
    below = bisect.bisect_left(acked, base)
    if below:
        self._acked_index[tp].difference_update(acked[:below])
        del acked[:below]
    end, taken = base, 0
    while True:
        end = ABSENT.run_end(tp, end)
        if taken >= len(acked) or acked[taken] != end:
            break
        run = next(consecutive_numbers(acked[taken:]))
        taken += len(run)
        end = run[-1] + 1
    if end == base:
        return None
    self._acked_index[tp].difference_update(acked[:taken])
    del acked[:taken]
    ABSENT.forget_below(tp, end)
    return end


PATCH = Patch("contiguous commit", Signature(Consumer, "_new_offset", ("self", "tp")),
              lambda original: new_offset,
              assigned=("_committed_offset", "_acked", "_acked_index"))
