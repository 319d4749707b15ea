"""`stream-app bench` at a tiny size, so it cannot rot. Checks that every figure is there
and consistent; never how fast anything is (that is what the bench prints)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Endpoints

pytestmark = pytest.mark.integration


def test_the_bench_prints_every_figure(endpoints: Endpoints, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {"STREAM_APP_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
           "STREAM_APP_REDIS_URL": endpoints.redis_url, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "stream_app", "bench", "--events", "2000", "--contacts", "300",
         "--environments", "2", "--reader-clients", "2", "--reader-seconds", "1",
         "--probes", "3", "--background-rate", "100", "--failover-contacts", "500",
         "--failover-session-timeout", "6", "--live-streams", "5", "--live-seconds", "1",
         "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert 1500 <= figures["events"] <= 2500, "about the events asked for"
    for consumer in ("aiokafka", "bare_faust", "bare_faust_patched", "worker"):
        assert figures[consumer]["cpu_us_per_event"] > 0, consumer
        assert 0 < figures[consumer]["events"] <= figures["events"], consumer
    assert figures["worker"]["cpu_ratio_to_bare_faust"] > 0
    assert figures["reader"]["requests"] > 0 and figures["reader"]["p99_ms"] > 0
    assert figures["reader_uncached"]["requests"] > 0
    assert figures["live"]["streams"] == 5 and figures["live"]["p99_ms"] >= 0
    assert figures["live"]["pushes_per_stream_per_second"] > 0, "changes were pushed"
    assert figures["reader_new_connection"]["requests"] > 0
    assert figures["reader_new_connection"]["new_connection"] is True
    assert figures["end_to_end_replay"]["probes"] == 3
    assert figures["end_to_end_replay"]["not_visible_in_10s"] == 0
    assert figures["end_to_end"]["probes"] == 3
    assert figures["end_to_end"]["not_visible_in_10s"] == 0
    assert figures["end_to_end"]["max_ms"] >= figures["end_to_end"]["p99_ms"] > 0
    assert figures["end_to_end"]["worst_loop_lag_ms"] > 0, "the worker's loop lag is measured"
    e2e = figures["end_to_end"]
    assert 0 <= e2e["worst_loop_lag_busy_ms"] <= e2e["worst_loop_lag_ms"], "a part of a lag"
    assert figures["restart"]["restart_to_first_event_s"] > 0
    assert figures["restart"]["state_disk_mib"] > 0, "RocksDB tables on disk"
    scale = figures["scale_out"]
    assert scale["workers_1"]["keyed_partitions_per_worker"] == [6]
    assert scale["workers_2"]["keyed_partitions_per_worker"] == [3, 3], "half each"
    assert all(n > 0 for n in scale["workers_2"]["events_per_worker"]), "both worked"
    assert scale["workers_2"]["cpu_us_per_event"] > 0 and "cpu_growth_percent" in scale
    failover = figures["failover"]
    assert failover["contacts"] == 500 and failover["session_timeout_s"] == 6
    for standby in ("standby_0", "standby_1"):
        assigned = failover[standby]["kill_to_survivor_assigned_s"]
        assert 0 < assigned <= failover[standby]["kill_to_every_partition_counted_s"], standby
    assert "failover, 500 contacts on 2 workers" in run.stdout
    for line in ("| worker end to end |", "| same, with this project's Faust patches and uvloop |",
                 "goal worker CPU per event", "goal reader p99", "goal end to end p99",
                 "goal worst event loop lag", "worst event loop lag",
                 "goal restart to first event", "goal scale-out CPU per event growth"):
        assert line in run.stdout, line
