"""The published outcome records (contract §3): fields, and ids that survive a replay."""

from __future__ import annotations

import orjson

from stream_app.core.domain.matching import UNMATCHED, Decision
from stream_app.core.domain.outcomes import answered_record, classified_record, outcome_id


def test_a_matched_classification_names_its_source() -> None:
    decision = Decision("agent-7", "out-3")
    record = orjson.loads(classified_record("env", "cb1", "cba", "2026-11-30", decision))
    assert record == {"id": outcome_id("classified", "env", "cb1"), "kind": "classified",
                      "environment_id": "env", "call_id": "cb1", "callback_agent_id": "cba",
                      "day": "2026-11-30", "outcome": "matched", "source_agent_id": "agent-7",
                      "source_call_id": "out-3"}


def test_an_unmatched_late_classification_has_no_source_and_says_late() -> None:
    record = orjson.loads(classified_record("env", "cb1", "cba", "2026-11-30", UNMATCHED,
                                            late=True))
    assert record["outcome"] == "unmatched" and record["late"] is True
    assert "source_agent_id" not in record and "source_call_id" not in record


def test_an_answered_record() -> None:
    record = orjson.loads(answered_record("env", "cb1", "cba", "2026-11-30"))
    assert record["kind"] == "answered" and record["id"] == outcome_id("answered", "env", "cb1")
    assert "outcome" not in record


def test_ids_are_deterministic_and_distinct_per_kind_environment_and_call() -> None:
    ids = {outcome_id(k, e, c) for k in ("classified", "answered") for e in ("e1", "e2")
           for c in ("c1", "c2")}
    assert len(ids) == 8
    assert outcome_id("answered", "e1", "c1") == outcome_id("answered", "e1", "c1")
    assert outcome_id("answered", "e:1", "c1") != outcome_id("answered", "e", "1:c1"), \
        "the separator keeps ids containing ':' apart"
