"""Patch: commit only a contiguous run from the base (``Consumer._new_offset``).

Faust checks for a hole at the head of the acked offsets only when the committed offset
is truthy (not for None or 0), and with an off-by-one (a hole of exactly one message is
committed over). The patch commits the run of acked offsets that starts exactly at the
committed offset, and nothing while that base is unknown. Holes that stay are fetched
again (:mod:`stream_app.worker.holes`).

Together with :mod:`.seek_on_assignment` this keeps the invariant the audit
(``stream-app audit``) checks: every offset a worker commits on an input topic was
processed.
"""

from __future__ import annotations

import bisect

from faust.transport.consumer import Consumer
from faust.types import TP
from faust.utils.functional import consecutive_numbers

from stream_app.worker.patches.base import Patch, Signature


def new_offset(self: Consumer, tp: TP) -> int | None:
    """The offset to commit for ``tp``: one past the acked run starting at the base.

    Invariant: every offset below the returned one, from the base up, was acked.
    """
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    base = self._committed_offset[tp]
    if base is None:
        return None
    acked.sort()
    below = bisect.bisect_left(acked, base)
    if below:
        self._acked_index[tp].difference_update(acked[:below])
        del acked[:below]
    if not acked or acked[0] != base:
        return None
    run = list(next(consecutive_numbers(acked)))
    del acked[:len(run)]
    self._acked_index[tp].difference_update(run)
    return run[-1] + 1


PATCH = Patch("contiguous commit", Signature(Consumer, "_new_offset", ("self", "tp")),
              lambda original: new_offset,
              assigned=("_committed_offset", "_acked", "_acked_index"))
