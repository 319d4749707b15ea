"""The port a process is about to serve on, checked before anything starts.

A busy port found by the web server itself surfaced as a 40- to 80-line traceback
ending in ``OSError: [Errno 98]``, naming no setting. Checked first, it is one line that
says which setting to change. (A port taken between the check and the bind still fails
the old way: rare, and the check is no lock.)
"""

from __future__ import annotations

import errno
import socket


def refuse_busy(bind: str, port: int, setting: str) -> None:
    """Exit with one line if ``bind:port`` cannot be bound (in use, or not allowed)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
            raise SystemExit(f"error: port {port} on {bind} {why}: set {setting} to a free "
                             f"port (or stop what holds it)") from None
