"""The worker refuses to start when the join's topics are not co-partitioned."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream_app.core.topics import TopicLayoutError, TopicNames, check_copartitioned
from tests.conftest import Endpoints
from tests.support import REPO, WorkerProcess, worker_env

pytestmark = pytest.mark.integration


def test_check_names_every_mismatch() -> None:
    check_copartitioned({"a": 4, "b": 4}, 4)
    with pytest.raises(TopicLayoutError, match="b has 3"):
        check_copartitioned({"a": 4, "b": 3}, 4)


async def test_worker_exits_with_a_clear_error(endpoints: Endpoints, tmp_path: Path) -> None:
    env = worker_env(endpoints.kafka_bootstrap, endpoints.redis_url, tmp_path)
    names = TopicNames.from_settings(WorkerProcess(env).settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(names.keyed, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    result = subprocess.run([sys.executable, "-m", "stream_app", "worker"], cwd=REPO,
                            env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert f"{names.keyed} has 3" in result.stderr
    assert "Traceback" not in result.stderr
