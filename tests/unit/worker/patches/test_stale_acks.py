"""Patch: stale acks are refused. Each test fails without the code it covers."""

from __future__ import annotations

from faust.transport.consumer import Consumer
from faust.types import TP

from stream_app.worker import patch_registry
from tests.unit.worker.doubles import consumer_double, message

patch_registry.install()


# -- 1. stale acks --------------------------------------------------------------------

def test_an_ack_from_an_earlier_generation_is_refused() -> None:
    consumer = consumer_double(generation=2)
    assert Consumer.ack(consumer, message(7, generation=1)) is False
    assert consumer._acked[TP("in", 0)] == []


def test_an_ack_while_flow_is_suspended_is_refused() -> None:
    consumer = consumer_double(flow_active=False)
    assert Consumer.ack(consumer, message(7)) is False
    assert consumer._acked[TP("in", 0)] == []


def test_a_current_ack_is_recorded() -> None:
    consumer = consumer_double()
    assert Consumer.ack(consumer, message(7)) is True
    assert consumer._acked[TP("in", 0)] == [7]
