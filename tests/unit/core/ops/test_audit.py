"""The audit's own logic: dead letters name their source, missing offsets read as ranges.

The audit against a real broker runs in the integration tests (``test_crash``,
``test_faults``); these cover what it concludes from what it read."""

from __future__ import annotations

from stream_app.core.domain.records import DeadLetter
from stream_app.core.ops.audit import AuditReport, TopicAudit, dead_origin, missing_ranges


def test_a_dead_letter_names_the_input_record_it_came_from() -> None:
    letter = DeadLetter("not JSON", "not_json", "outbound-calls", 2, 41, 1.0, None, b"{x")
    assert dead_origin(letter.encode()) == ("outbound-calls", 2, 41)


def test_something_that_is_no_dead_letter_names_no_input_record() -> None:
    assert dead_origin(b"{}") == ("", -1, -1)
    assert dead_origin(None) == ("", -1, -1)


def test_missing_offsets_are_compressed_into_ranges_per_partition() -> None:
    missing = [("in", 0, 7), ("in", 0, 5), ("in", 0, 6), ("in", 1, 6), ("in", 0, 9),
               ("out", 0, 1)]
    assert missing_ranges(missing) == ["in[0]@5-7", "in[0]@9", "in[1]@6", "out[0]@1"]
    assert missing_ranges([]) == []


def test_a_report_counts_what_is_missing_over_every_topic() -> None:
    clean = TopicAudit("outbound-calls", committed=3, forwarded=2, dead_lettered=1)
    dirty = TopicAudit("inbound-callbacks", committed=2, forwarded=1,
                       missing=[("inbound-callbacks", 0, 4)])
    report = AuditReport([clean, dirty])
    assert report.missing == 1
    assert report.as_dict()["topics"][1]["missing_ranges"] == ["inbound-callbacks[0]@4"]
    assert AuditReport([clean]).missing == 0
