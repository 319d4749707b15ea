"""The baseline of ``stream-app bench``: a bare Faust agent that only decodes the events.

Run as ``python -m stream_app.dev.bench.bare [--patched] BOOTSTRAP APP_ID EXPECTED DATADIR
TOPIC...``; it prints ``count N`` every 0.2 s and ``done`` once it has decoded EXPECTED
events, so the bench can read its CPU time from outside. Same Faust settings as the
worker where they touch per-message cost (raw serializers, in-memory store, no web
server). Stock faust-streaming, unless ``--patched``: then with the worker's
Faust patches (``worker/patches``), its slim Monitor and its event loop (uvloop), i.e. what one
pass through Faust costs the worker (every event passes twice: intake, then the keyed
topic).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import faust
import orjson


def decode(value: bytes | None) -> object:
    """What every consumer in the bench does per event: parse it (bad input included)."""
    try:
        return orjson.loads(value or b"null")
    except orjson.JSONDecodeError:
        return None


def main() -> None:
    args = sys.argv[1:]
    patched = args[0] == "--patched"
    bootstrap, app_id, expected, datadir, *topics = args[1:] if patched else args
    want = int(expected)
    options: dict[str, Any] = {}
    if patched:
        from stream_app.loops import use_event_loop
        from stream_app.worker import patch_registry
        from stream_app.worker.monitor import SlimMonitor

        use_event_loop("uvloop")
        patch_registry.install()
        options["Monitor"] = SlimMonitor
    app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    autodiscover=False, datadir=datadir, **options)
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "at": 0.0}
    step = max(1, want // 200)  # fine enough for the bench's 2% start mark
    # Faust's worker redirects sys.stdout into its logger; report on the real pipe.
    report = os.fdopen(os.dup(1), "w", buffering=1)

    @app.agent(source, concurrency=1)
    async def decode_only(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            decode(value)
            seen["n"] += 1
            now = time.monotonic()
            if seen["n"] >= want or seen["n"] % step == 0 or now - seen["at"] > 0.2:
                report.write(f"count {seen['n']}\n")
                seen["at"] = now
            if seen["n"] == want:
                report.write("done\n")

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
