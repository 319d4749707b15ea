"""Patch: refuse stale acks (``Consumer.ack``).

The stream iterator skips a message fetched before a rebalance and *acks* it "so lag does
not grow"; the commit then moves past a message no agent processed (faust-streaming
#527). Acks of another consumer generation, or while flow is suspended, are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.transport.consumer import Consumer

from stream_app.patching import Patch, Signature


def refuse_stale_acks(original: Callable[[Consumer, Any], bool]
                      ) -> Callable[[Consumer, Any], bool]:
    def ack(self: Consumer, message: Any) -> bool:
        app = self.app
        stale = (message.generation_id is not None
                 and message.generation_id != app.consumer_generation_id)
        if stale or not app.flow_control.is_active():
            return False
        return original(self, message)

    return ack


PATCH = Patch("stale acks", Signature(Consumer, "ack", ("self", "message")), refuse_stale_acks)
