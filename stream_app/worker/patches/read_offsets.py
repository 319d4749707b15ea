"""Patch: no read offsets (``Consumer.__init__``).

The fetch loop drops re-fetched messages below a per-partition "read offset" that also
advanced for abandoned messages ("DROPPED MESSAGE ROFF"), and counts offset jumps as
acked "gaps". Both are off: every fetched message is delivered, and a partition with
offset holes (compacted or transactional input) commits only up to its first hole (a
restart replays from there).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from faust.transport.consumer import Consumer

from stream_app.patching import Patch, Signature


class NoReadOffsets(dict):  # type: ignore[type-arg]
    """A read-offset map that remembers nothing: no message is ever dropped as 'read'."""

    def __getitem__(self, key: Any) -> None:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def pop(self, key: Any, default: Any = None) -> Any:
        return default


def without_read_offsets(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def init(self: Consumer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._read_offset = NoReadOffsets()

    return init


PATCH = Patch(
    "no read offsets",
    Signature(Consumer, "__init__", (
        "self", "transport", "callback", "on_partitions_revoked", "on_partitions_assigned",
        "commit_interval", "commit_livelock_soft_timeout", "loop", "kwargs")),
    without_read_offsets, assigned=("_read_offset",))
