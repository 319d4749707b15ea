"""A ``stream-app`` command run as a child process (the demo and the bench start them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class ChildDied(RuntimeError):
    """A child process the caller relies on exited."""


class StreamAppProcess:
    """``python -m stream_app ARGS`` with extra ``STREAM_APP_*`` settings, output
    appended to ``log``; ``stop`` is SIGTERM, then SIGKILL after 30 s."""

    running: set[StreamAppProcess] = set()
    """Children started and not stopped on purpose: any of them exiting is a failure
    (:func:`check_children`)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        StreamAppProcess.running.add(self)
        self.args = args
        self.env = env or {}
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream_app", *args],
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        StreamAppProcess.running.discard(self)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no leaving the group, no flush (a lost machine)."""
        StreamAppProcess.running.discard(self)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def check_alive(self) -> None:
        """Raise :class:`ChildDied`, with the tail of its log, if the child exited."""
        code = self.process.poll()
        if code is not None:
            raise ChildDied(f"`stream-app {' '.join(self.args)}` exited with code {code}; "
                            f"the end of its log ({self.log}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def again(self) -> StreamAppProcess:
        """The same command started anew (same settings, same log)."""
        return StreamAppProcess(self.args, self.log, self.env)


def check_children() -> None:
    """Raise :class:`ChildDied` if any child still wanted has exited."""
    for child in list(StreamAppProcess.running):
        child.check_alive()
