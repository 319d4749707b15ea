"""Watermarks: what an intake may promise, and what a keyed partition may decide on."""

from __future__ import annotations

from stream_app.core.domain.progress import InputPartition, IntakeProgress, Watermarks

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


def test_partitions_added_at_run_time_hold_the_low_watermark_until_they_report() -> None:
    a, b = InputPartition("in", 0), InputPartition("in", 1)
    marks = Watermarks([a])
    marks.advance(0, {a: 100.0})
    assert marks.low(0) == 100.0
    assert marks.expect([a, b, InputPartition("other", 0)]) == {b}, "only the input topics"
    assert marks.low(0) is None, "nothing is decided before the new partition reports"
    marks.advance(0, {b: 50.0})
    assert marks.low(0) == 50.0
    assert marks.expect([a, b]) == set()


def test_a_progress_record_naming_a_new_partition_of_an_input_topic_adds_it() -> None:
    a, b = InputPartition("in", 0), InputPartition("in", 1)
    marks = Watermarks([a])
    marks.advance(0, {a: 100.0})
    marks.advance(1, {b: 30.0, InputPartition("stray", 0): 10.0})
    assert b in marks.inputs and InputPartition("stray", 0) not in marks.inputs
    assert marks.low(0) is None, "partition 0 has not heard the new input partition yet"
    assert marks.low(1) is None
