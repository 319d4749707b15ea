"""A contact's keyed partition is the one Kafka's default partitioner gives its key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.kafka.topics import KeyedPartitioner, kafka_partition


@given(st.binary(max_size=80), st.integers(min_value=1, max_value=64))
def test_the_partition_is_aiokafkas_default_partitioners(key: bytes, count: int) -> None:
    every = list(range(count))
    assert kafka_partition(key, count) == DefaultPartitioner()(key, every, every)


def test_a_contact_key_keeps_its_partition() -> None:
    partition_of = KeyedPartitioner(6)
    key = b"env-1\x1f+5511900000000"
    assert partition_of(key) == DefaultPartitioner()(key, list(range(6)), list(range(6)))
