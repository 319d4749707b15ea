"""Guards against two faust-streaming (0.15.x) paths that lose messages.

Both were seen here as callbacks missing after a start-up or a rebalance, and both are
closed by giving up an optimisation, never correctness:

1. **Skipped messages are acked.** The stream iterator skips a message fetched before a
   rebalance (or while flow is suspended for one) and *acks* it "so lag does not grow"
   (``Stream.__aiter__``); the commit on revocation then moves past a message no agent
   processed (the family of faust-streaming #527 / robinhood #604). The guard refuses to
   record such acks: the message is fetched and processed again after the rebalance.
2. **Re-fetched messages are dropped.** The fetch loop advances a per-partition "read
   offset" even for a message it abandoned because flow was suspended, and drops every
   later-fetched message below it ("DROPPED MESSAGE ROFF"); a batch fetched before the
   seek to committed offsets that ends recovery does exactly that. It also marks jumps in
   offsets as "gaps" that count as acked. The guard disables both: every fetched message
   is delivered. The price: a partition whose offsets have holes (a compacted or
   transactionally written input topic) commits only up to its first hole, so a restart
   replays from there; effects are idempotent, so counts stay exact.

Everything this app does tolerates redelivery, so at-least-once is all it needs.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

_installed = False


class _NoReadOffsets(dict):  # type: ignore[type-arg]
    """A read-offset map that remembers nothing: no message is ever dropped as 'read'."""

    def __getitem__(self, key: Any) -> None:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def pop(self, key: Any, default: Any = None) -> Any:
        return default


def install() -> None:
    """Patch faust's Consumer once per process."""
    global _installed
    if _installed:
        return
    original_ack, original_init = Consumer.ack, Consumer.__init__

    def ack(self: Consumer, message: Any) -> bool:
        app = self.app
        stale = (message.generation_id is not None
                 and message.generation_id != app.consumer_generation_id)
        if stale or not app.flow_control.is_active():
            return False
        return original_ack(self, message)

    def init(self: Consumer, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._read_offset = _NoReadOffsets()

    Consumer.ack = ack  # type: ignore[method-assign]
    Consumer.__init__ = init  # type: ignore[method-assign]
    _installed = True
