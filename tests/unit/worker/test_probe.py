"""The health probe timer feeds health and logs one task dump per stall."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from stream_app.observe.health import Health
from stream_app.observe.looplag import LoopLag
from stream_app.worker.probe import HealthProbe


async def test_the_health_probe_feeds_health_and_logs_one_task_dump_per_stall(
        caplog: pytest.LogCaptureFixture) -> None:
    tp = TP("in", 0)
    app = SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: {tp}, _thread=None,
                                                   _committed_offset={tp: 5}))

    async def ends(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {("in", 0): 10}

    async def ping() -> bool:
        return True

    clock = [100.0]
    health = Health(stall_after=30.0, clock=lambda: clock[0])
    store = SimpleNamespace(redis=SimpleNamespace(ping=ping))
    lag = LoopLag()
    probe = HealthProbe(app, health, store, ends, lag)  # type: ignore[arg-type]
    try:
        await probe()
        assert health.waiting and health.redis_at == 100.0 and health.live()[0]
        for _ in range(3):
            clock[0] += 20
            await probe()
    finally:
        assert lag._task is not None
        lag._task.cancel()
    assert not health.live()[0]
    dumps = [r for r in caplog.records if r.getMessage().startswith("stalled for")]
    assert len(dumps) == 1 and "== loop main" in dumps[0].getMessage()
