"""The app's Monitor: Faust's default keeps per-event statistics nobody here reads
(runtimes, counts per stream and task, per-table key counters); the slim one keeps only
what Faust itself reads (the stream inbound time its stall detector uses, and the
per-commit offsets)."""

from __future__ import annotations

import time
from typing import Any

from faust.sensors.monitor import Monitor

from stream_app.patching import Signature

MONITOR_HOOKS: dict[str, tuple[str, ...]] = {
    "on_message_in": ("self", "tp", "offset", "message"),
    "on_stream_event_in": ("self", "tp", "offset", "stream", "event"),
    "on_stream_event_out": ("self", "tp", "offset", "stream", "event", "state"),
    "on_message_out": ("self", "tp", "offset", "message"),
    "on_table_get": ("self", "table", "key"),
    "on_table_set": ("self", "table", "key", "value"),
    "on_table_del": ("self", "table", "key"),
}


class SlimMonitor(Monitor):
    """Faust's Monitor without the per-event bookkeeping (see the module doc)."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = time.monotonic()

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None


REQUIRES = tuple(Signature(Monitor, name, params) for name, params in MONITOR_HOOKS.items())
