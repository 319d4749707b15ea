"""A ``stream-app`` command run as a child process (the demo and the bench start them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class StreamAppProcess:
    """``python -m stream_app ARGS`` with extra ``STREAM_APP_*`` settings, output
    appended to ``log``; ``stop`` is SIGTERM, then SIGKILL after 30 s."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def again(self) -> StreamAppProcess:
        """The same command started anew (same settings, same log)."""
        return StreamAppProcess(self.args, self.log, self.env)
