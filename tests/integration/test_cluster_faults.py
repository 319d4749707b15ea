"""The distributed faults, on a cluster of the module's own: three KRaft brokers (the
worker's topics with three replicas, ``min.insync.replicas`` 2) and a Redis Cluster of
three masters with a replica each, the worker waiting for a replica before it commits
(``STREAM_APP_REDIS_MIN_REPLICAS=1``). Each run ends with every counter and outcome
record equal to the oracle on the topics and ``stream-app audit`` clean, with no manual
step. ``make faults`` runs them several times each (``tests/faults.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import FaultRun, run_fault
from tests.topology import Services, own_services

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[Services]:
    with own_services(cluster=True) as services:
        yield services


def assert_exact(run: FaultRun) -> None:
    print(f"\n{run.line()}")
    assert run.exact, run.mismatches[:5] + run.notes
    assert run.missing_offsets == 0
    assert run.restarts["liveness"] == 0, "recovered only by a liveness restart"


async def test_one_of_three_brokers_sigkilled_under_traffic(cluster: Services,
                                                            tmp_path: Path) -> None:
    """Partition leaders move to the surviving brokers; acks=all with two in sync."""
    run = await run_fault("cluster-broker-sigkill", cluster, tmp_path, seed=11, seconds=15.0,
                          callbacks=300, outage=6.0, grace=3.0, settle_timeout=150.0,
                          hit_window=(0.2, 0.4))
    assert_exact(run)


async def test_a_redis_master_sigkilled_fails_over_to_its_replica(cluster: Services,
                                                                   tmp_path: Path) -> None:
    """The replica is promoted (node timeout 2 s); the old master rejoins as a replica.
    Nothing acked to Kafka was only on the dead master: each batch waited for a replica."""
    run = await run_fault("cluster-redis-master-sigkill", cluster, tmp_path, seed=12,
                          seconds=15.0, callbacks=300, outage=6.0, grace=3.0,
                          settle_timeout=150.0, hit_window=(0.2, 0.4))
    assert_exact(run)
    assert run.hit_at > 0
    roles = cluster.redis_roles()
    assert sorted(roles.values()) == ["master"] * 3 + ["slave"] * 3, roles


async def test_three_workers_one_killed_one_added(cluster: Services, tmp_path: Path) -> None:
    run = await run_fault("cluster-workers-3", cluster, tmp_path, seed=13, seconds=15.0,
                          callbacks=300, grace=3.0, settle_timeout=180.0,
                          hit_window=(0.2, 0.4))
    assert_exact(run)
