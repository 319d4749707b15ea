"""The fault matrix's report: the duplicates a subscriber saw, per run, and what a failed
run shows of its workers' logs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import orjson

from benchmarks.faults import FaultRun, duplicate_outcomes, table, worker_errors


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


STALLED_LOG = """\
[2026-12-06 22:27:48,118] [3237] [ERROR] Unable connect to node with id 3: refused
[2026-12-06 22:27:49,118] [3237] [WARNING] Timer commit is overlapping
[2026-12-06 22:27:50,118] [3237] [ERROR] Unable connect to node with id 3: refused
[2026-12-06 22:29:50,000] [1] [ERROR] stalled for 121 s; where every task waits:
== loop main: 2 tasks
-- task Task-1 waiting on <Future pending>
     mode/timers.py:10 in __aiter__
     asyncio/tasks.py:649 in sleep
-- task Task-2 waiting on <Future pending>
     aiokafka/consumer/group_coordinator.py:900 in ensure_coordinator_known
[2026-12-06 22:29:51,000] [3237] [WARNING] later
"""


def test_a_failed_runs_report_shows_each_error_once_and_the_stalled_tasks(
        tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(STALLED_LOG)
    shown = worker_errors(log)
    assert sum("Unable connect" in line for line in shown) == 1
    assert not any("WARNING" in line or "in sleep" in line for line in shown)
    assert "-- task Task-2 waiting on <Future pending>" in shown
    assert any("ensure_coordinator_known" in line for line in shown)
    assert worker_errors(tmp_path / "absent.log") == []
