"""A batch of writes for one ``BATCHED`` script (``redis_scripts.py``): grouped per
environment (one hash slot), cut in chunks of :data:`SCRIPT_CHUNK` writes per call, each
call told every key it may touch (``KEYS``), growing when a script answers "need"."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from stream_app.core.redis_client import ScriptCall
from stream_app.core.redis_layout import call_key, env_tag, month_of, stats_prefix, version_key

SCRIPT_CHUNK = 200
"""Writes per call of a ``BATCHED`` script: Redis runs one script at a time, so a chunk
bounds how long a reader waits behind a batch (about a millisecond)."""


@dataclass
class Chunk:
    environment_id: str
    positions: list[int]
    """Where each write of the chunk stands in the batch."""


@dataclass
class ScriptBatch:
    """The writes of one batched script, grouped per environment, with the counter
    hashes each environment's calls are expected to touch."""

    script: str
    extra_args: list[str]
    size: int = 0
    writes: dict[str, list[tuple[int, str, list[str]]]] = field(default_factory=dict)
    keys: dict[str, set[str]] = field(default_factory=dict)

    def add(self, environment_id: str, call_id: str, agent_prefixes: list[str],
            days: list[str], args: list[str]) -> None:
        """A write of ``call_id`` expected to count on ``days`` for the environment and
        the callback agents of ``agent_prefixes`` (empty prefix: none)."""
        self.writes.setdefault(environment_id, []).append((self.size, call_id, args))
        prefixes = [stats_prefix(environment_id), *filter(None, agent_prefixes)]
        self.keys.setdefault(environment_id, set()).update(
            f"{p}{d}" for p in prefixes for day in days for d in (day, month_of(day)))
        self.size += 1

    def need(self, environment_id: str, keys: list[str]) -> None:
        tag = env_tag(environment_id)
        if not all(k.startswith(tag) for k in keys):  # a script bug, never a guess
            raise RuntimeError(f"a script asked for keys outside environment {tag}")
        self.keys[environment_id].update(keys)

    def chunks(self) -> list[Chunk]:
        return [Chunk(env, [p for p, _, _ in writes[i:i + SCRIPT_CHUNK]])
                for env, writes in self.writes.items()
                for i in range(0, len(writes), SCRIPT_CHUNK)]

    def call(self, chunk: Chunk) -> ScriptCall:
        """KEYS: the chunk's call records (each write names its own by index), then the
        counter hashes expected, then the environment's version key."""
        env = chunk.environment_id
        by_position = {p: (call_id, args) for p, call_id, args in self.writes[env]}
        calls: dict[str, int] = {}
        encoded = []
        for p in chunk.positions:
            call_id, args = by_position[p]
            index = calls.setdefault(call_key(env, call_id), len(calls) + 1)
            encoded.append([str(index), *args])
        return ScriptCall(self.script, [*calls, *sorted(self.keys[env]), version_key(env)],
                          [orjson.dumps(encoded).decode(), env_tag(env), *self.extra_args])
