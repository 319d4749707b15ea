"""Watermarks: what an intake may promise, and what a keyed partition may decide on."""

from __future__ import annotations

from stream_app.core.progress import InputPartition, IntakeProgress, Watermarks

A, B = InputPartition("out", 0), InputPartition("in", 0)


def test_an_active_partition_promises_its_newest_timestamp_minus_the_disorder() -> None:
    progress = IntakeProgress(disorder=5.0)
    progress.delivered(A, 10, 100.0)
    progress.delivered(A, 11, 90.0)  # out of order: the newest stays
    assert progress.watermarks([A], lambda s: False, now=1000.0) == {A: 95.0}
    assert progress.next_offset[A] == 12


def test_a_caught_up_partition_advances_with_the_wall_clock() -> None:
    progress = IntakeProgress(disorder=5.0)
    assert progress.watermarks([A, B], lambda s: s == B, now=1000.0) == {B: 995.0}
    progress.delivered(A, 0, 100.0)
    assert progress.watermarks([A], lambda s: True, now=1000.0) == {A: 995.0}
    assert progress.watermarks([A], lambda s: False, now=1000.0) == {A: 95.0}


def test_the_low_watermark_waits_for_every_input_and_never_goes_back() -> None:
    marks = Watermarks([A, B])
    assert marks.advance(3, {A: 50.0}) and marks.low(3) is None
    assert marks.advance(3, {B: 40.0}) and marks.low(3) == 40.0
    assert not marks.advance(3, {B: 30.0}) and marks.low(3) == 40.0
    assert marks.low(4) is None, "keyed partitions are tracked apart"
    assert not marks.advance(3, {InputPartition("other", 0): 99.0})
