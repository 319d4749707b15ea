"""The fault matrix's report: the duplicates a subscriber saw, per run."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from tests.faults import FaultRun, duplicate_outcomes, table


def record(outcome_id: str) -> SimpleNamespace:
    return SimpleNamespace(value=orjson.dumps({"id": outcome_id}))


def test_duplicates_are_records_whose_id_was_seen_before() -> None:
    assert duplicate_outcomes([record("a"), record("b"), record("a"), record("a")]) == 2
    assert duplicate_outcomes([record("a"), record("b")]) == 0


def test_the_table_prints_each_runs_duplicates() -> None:
    runs = [FaultRun("worker-sigkill", 1, exact=True, recovery_seconds=3.0, duplicates=12),
            FaultRun("worker-sigkill", 2, exact=True, recovery_seconds=4.0, duplicates=0)]
    header, _, row = table(runs).splitlines()
    assert header.endswith("| duplicate outcomes per run |")
    assert row.endswith("| 12, 0 |")
