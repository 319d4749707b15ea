"""A guard against a faust-streaming data loss on rebalance.

Faust's stream iterator skips messages fetched before a rebalance (or while flow
control is suspended for one) and *acks* them "so lag does not grow" (faust/streams.py,
``Stream.__aiter__``). The commit made while partitions are revoked then moves past
messages that no agent processed, and the new owner seeks beyond them: they are lost
(same family as faust-streaming #527 / robinhood #604). Seen here as a handful of
callbacks missing after a rebalance at start-up.

The guard refuses to record an ack for a message of an old consumer generation or while
flow is suspended. Such a message is simply fetched and processed again after the
rebalance: at-least-once, which every effect of this app tolerates.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

_installed = False


def install() -> None:
    """Patch ``Consumer.ack`` once per process."""
    global _installed
    if _installed:
        return
    original = Consumer.ack

    def ack(self: Consumer, message: Any) -> bool:
        app = self.app
        stale = (message.generation_id is not None
                 and message.generation_id != app.consumer_generation_id)
        if stale or not app.flow_control.is_active():
            return False
        return original(self, message)

    Consumer.ack = ack  # type: ignore[method-assign]
    _installed = True
