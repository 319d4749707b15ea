"""Workers joining, leaving and SIGKILLed under steady traffic: no input lost, and every
counter and outcome record equal to the oracle (short soak)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak import run_soak
from tests.conftest import Endpoints

pytestmark = pytest.mark.integration


async def test_soak_three_workers_lose_nothing(endpoints: Endpoints, tmp_path: Path) -> None:
    result = await run_soak(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path,
                            seconds=40, callbacks=1500, seed=3, pause=(3.0, 6.0))
    print(f"\n{result.summary()}")
    assert result.actions["sigkill"] >= 1 and result.actions["sigterm"] >= 1
    assert result.report is not None
    assert result.report.missing == 0, result.report.as_dict()
    assert result.calls_exact, result.mismatches[:10]
    assert result.counts_exact, result.mismatches[:10]
    assert result.outcomes_exact
    outbound = result.report.topics[0]
    assert outbound.forwarded + outbound.dead_lettered == outbound.committed > 0
