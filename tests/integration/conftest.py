"""Fixtures shared by the integration modules: traffic written by the real worker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from stream_app.core.store.counters import CounterStore, Stats
from tests.integration.http import DAY, PHONES
from tests.support import REPO, WorkerProcess, inbound, outbound, poll
from tests.support import produce as send


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per session (``pip wheel``, as a user builds it)."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True, timeout=600)
    return next(dist.glob("callback_stats-*.whl"))


@pytest.fixture(scope="module")
def populated() -> dict[str, str]:
    """Environments the module's traffic goes to (filled by ``traffic``)."""
    return {"a": f"env-a-{uuid.uuid4().hex[:8]}", "b": f"env-b-{uuid.uuid4().hex[:8]}"}


@pytest.fixture
async def traffic(worker: WorkerProcess, producer: AIOKafkaProducer, redis: Redis,
                  populated: dict[str, str]) -> dict[str, str]:
    """Env a: 3 callbacks from agent-2, 3 from agent-1, 1 unmatched, answered 4; env b: 1."""
    a, b = populated["a"], populated["b"]
    store = CounterStore(redis, 3600)
    if (await store.read_stats(a, [DAY])).received == 7:
        return populated
    s = worker.settings
    outs = [outbound(a, PHONES[i], "agent-2" if i < 3 else "agent-1", f"{DAY}T08:00:00Z",
                     name="Sales Outbound" if i < 3 else None) for i in range(6)]
    outs.append(outbound(b, PHONES[0], "agent-9", f"{DAY}T08:00:00Z", name="Other"))
    await send(producer, s.topic_outbound, *outs)
    ins = [inbound(a, PHONES[i], f"{a}-call-{i}", f"{DAY}T10:00:00Z") for i in range(7)]
    ins += [inbound(a, PHONES[i], f"{a}-call-{i}", f"{DAY}T10:00:09Z", kind="answered")
            for i in range(4)]
    ins.append(inbound(b, PHONES[0], f"{b}-call", f"{DAY}T10:00:00Z"))
    await send(producer, s.topic_inbound, *ins)

    def settled(st: Stats) -> bool:
        return st.received == 7 and st.unmatched + sum(st.by_source.values()) == 7

    await poll(lambda: store.read_stats(a, [DAY]), settled, what="env a settled")
    await poll(lambda: store.read_stats(b, [DAY]), lambda st: st.received == 1, what="env b")
    return populated
