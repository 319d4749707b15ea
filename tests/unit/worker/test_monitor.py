"""The slim Monitor. Each test fails without the code it covers."""

from __future__ import annotations

from types import SimpleNamespace

from faust.types import TP

from stream_app.worker import patch_registry
from stream_app.worker.monitor import SlimMonitor

patch_registry.install()


# -- the slim Monitor ----------------------------------------------------------------------

def test_the_slim_monitor_keeps_only_what_faust_reads() -> None:
    monitor = SlimMonitor()
    tp = TP("in", 0)
    stream = SimpleNamespace(task_owner=None)
    assert monitor.on_stream_event_in(tp, 1, stream, None) is None  # type: ignore[arg-type]
    assert tp in monitor.stream_inbound_time, "Faust's stall detector reads it"
    monitor.on_stream_event_out(tp, 1, stream, None, None)  # type: ignore[arg-type]
    assert monitor.events_total == 0 and not monitor.events_by_stream
