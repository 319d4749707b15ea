"""Which asyncio event loop the long-running processes (worker, reader) run on.

uvloop runs the same asyncio code with its loop, callback scheduling and socket
transports in C: about 14% less CPU per event in the worker (measured side by side on
the same events). The reader runs on it too, for one setting rather than two (no
measurable change there: its time is aiohttp's and redis-py's Python code).
``STREAM_APP_EVENT_LOOP=asyncio`` switches back to the standard loop, e.g. to debug with
asyncio's own tooling.
"""

from __future__ import annotations

import asyncio
from typing import Literal

EventLoop = Literal["uvloop", "asyncio"]


def use_event_loop(kind: EventLoop) -> None:
    """Make every event loop this process creates from now on (Faust's consumer thread
    included, and aiohttp's ``run_app``) one of ``kind``."""
    if kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
