"""Patch: commit only a contiguous run from the base. Each test fails without the code it covers."""

from __future__ import annotations

import pytest
from faust.transport.consumer import Consumer
from hypothesis import given
from hypothesis import strategies as st

from stream_app.worker import patch_registry
from tests.unit.worker.doubles import TP0, consumer_double

patch_registry.install()


# -- 4. commit only a contiguous run from the base ------------------------------------


def new_offset(base: int | None, acked: list[int]) -> tuple[int | None, list[int]]:
    consumer = consumer_double({TP0: base} if base is not None else {})
    consumer._acked[TP0] = list(acked)
    consumer._acked_index[TP0] = set(acked)
    return Consumer._new_offset(consumer, TP0), consumer._acked[TP0]


@pytest.mark.parametrize(("base", "acked", "expected"), [
    (None, list(range(300, 400)), None),   # no base known: faust committed 400
    (0, list(range(300, 400)), None),      # base 0 is falsy: faust committed 400
    (100, [101, 102], None),               # a one-message hole at the head: faust said 103
    (100, [100, 101, 102, 104], 103),
    (100, [90, 99, 100, 101], 102),        # acks below the base are dropped
    (100, [], None),
])
def test_commit_stops_at_the_first_unacked_offset(base: int | None, acked: list[int],
                                                  expected: int | None) -> None:
    assert new_offset(base, acked)[0] == expected


@given(st.integers(0, 50), st.sets(st.integers(0, 80)))
def test_every_offset_below_the_commit_was_acked(base: int, acked: set[int]) -> None:
    """Oracle: the commit is the first offset from the base that was not acked."""
    got, _ = new_offset(base, sorted(acked))
    first_missing = next(o for o in range(base, 200) if o not in acked)
    assert got == (None if first_missing == base else first_missing)


def test_a_run_goes_on_over_offsets_a_fetch_read_past_without_a_record() -> None:
    """A transaction's commit marker (or an aborted batch) is no hole; a partition whose
    log ends in a marker commits up to its end."""
    from faust.types import TP

    from stream_app.worker.patches.absent_offsets import ABSENT

    tp = TP("tx-commit", 0)
    ABSENT.read(tp, 100, 110, [100, 101, 105, 106])  # 102-104 and 107-109 absent
    consumer = consumer_double({tp: 100})
    consumer._acked[tp] = [100, 101, 105, 106]
    assert Consumer._new_offset(consumer, tp) == 110
    ABSENT.read(tp, 110, 112, [])  # a commit marker and an abort marker, nothing else
    consumer = consumer_double({tp: 110})
    assert Consumer._new_offset(consumer, tp) == 112, "nothing acked, only markers left"
    consumer = consumer_double({tp: 112})
    assert Consumer._new_offset(consumer, tp) is None
    ABSENT.read(tp, 112, 114, [113])
    consumer = consumer_double({tp: 112})
    assert Consumer._new_offset(consumer, tp) == 113, "the record at 113 is not acked yet"
