"""Patch: no read offsets. Each test fails without the code it covers."""

from __future__ import annotations

from faust.types import TP

from stream_app.worker import patch_registry
from stream_app.worker.patches import read_offsets

patch_registry.install()


# -- 2. read offsets ------------------------------------------------------------------

def test_the_read_offset_map_remembers_nothing() -> None:
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
    from mode.utils.mocks import MagicMock

    consumer = AIOKafkaConsumer(MagicMock(), callback=MagicMock(),
                                on_partitions_revoked=MagicMock(),
                                on_partitions_assigned=MagicMock())
    assert isinstance(consumer._read_offset, read_offsets.NoReadOffsets)
    consumer._read_offset[TP("in", 0)] = 500
    assert consumer._read_offset[TP("in", 0)] is None
