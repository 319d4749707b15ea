"""A batch of writes for one batched script (``lua/batched.lua``): grouped per
environment (one hash slot), cut in chunks of :data:`SCRIPT_CHUNK` writes per call, each
call handed every key it may touch (``KEYS``), growing when a script answers "need"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from stream_app.core.store.client import ScriptCall
from stream_app.core.store.codecs import ClassifyWire, InboundWire, NeedReply
from stream_app.core.store.layout import call_key, changes_channel, counter_keys, version_key
from stream_app.core.store.scripts import Script

SCRIPT_CHUNK = 200
"""Writes per call of a batched script: Redis runs one script at a time, so a chunk
bounds how long a reader waits behind a batch (about a millisecond)."""
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

Wire = InboundWire | ClassifyWire


@dataclass
class Chunk:
    environment_id: str
    positions: list[int]
    """Where each write of the chunk stands in the batch."""


@dataclass
class ScriptBatch:
    """The writes of one batched script, grouped per environment, with the (agent, day)
    counter hashes each environment's calls are expected to touch."""

    script: Script
    fields: dict[str, str]
    """The script's own input fields (``record_inbound``: ``ttl``)."""
    size: int = 0
    writes: dict[str, list[tuple[int, str, Wire]]] = field(default_factory=dict)
    counters: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def add(self, environment_id: str, call_id: str, agents: list[str], days: list[str],
            wire: Wire) -> None:
        """A write of ``call_id`` expected to count on ``days`` for the environment and
        the callback agents ``agents`` (empty: none)."""
        self.writes.setdefault(environment_id, []).append((self.size, call_id, wire))
        self.counters.setdefault(environment_id, set()).update(
            (agent, day) for agent in ("", *filter(None, agents)) for day in days)
        self.size += 1

    def need(self, environment_id: str, needed: list[NeedReply]) -> None:
        if not all(DAY.fullmatch(n.day) for n in needed):  # a script bug, never a guess
            raise RuntimeError(f"a script asked for counters of no day: {needed}")
        self.counters[environment_id].update(needed)

    def chunks(self) -> list[Chunk]:
        return [Chunk(env, [p for p, _, _ in writes[i:i + SCRIPT_CHUNK]])
                for env, writes in self.writes.items()
                for i in range(0, len(writes), SCRIPT_CHUNK)]

    def call(self, chunk: Chunk) -> ScriptCall:
        """KEYS: the chunk's call records (each write names its own by index), the
        counter hashes expected, the environment's version key; ARGV[1] says which."""
        env = chunk.environment_id
        by_position = {p: (call_id, wire) for p, call_id, wire in self.writes[env]}
        index: dict[str, int] = {}
        writes = []
        for p in chunk.positions:
            call_id, wire = by_position[p]
            wire.call = index.setdefault(call_key(env, call_id), len(index) + 1)
            writes.append(wire)
        counters = {}
        for agent, day in sorted(self.counters[env]):
            day_key, month_key = counter_keys(env, agent, day)
            counters[f"{agent}\t{day}"] = {
                "day": index.setdefault(day_key, len(index) + 1),
                "month": index.setdefault(month_key, len(index) + 1)}
        version = index.setdefault(version_key(env), len(index) + 1)
        argument = orjson.dumps({"writes": writes, "counters": counters, "version": version,
                                 "channel": changes_channel(env), **self.fields})
        return ScriptCall(self.script, list(index), [argument.decode()])
