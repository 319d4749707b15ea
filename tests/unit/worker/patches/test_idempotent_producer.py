"""Patch: every producer Faust makes is idempotent with acks=all."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import Producer

from stream_app.worker import patch_registry

patch_registry.install()


class _App:
    in_transaction = False


def test_a_plain_producer_is_idempotent_and_waits_for_every_in_sync_replica() -> None:
    producer: Any = Producer.__new__(Producer)
    producer.app = _App()
    extra = Producer._settings_extra(producer)
    assert extra["enable_idempotence"] is True
    assert extra["acks"] == "all"
