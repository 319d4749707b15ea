"""What the bench is asked to do, and every figure it prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BenchConfig:
    events: int = 200_000
    contacts: int = 50_000
    environments: int = 5
    partitions: int = 3
    seed: int = 1
    reader_clients: int = 16
    reader_seconds: float = 10.0
    probes: int = 100
    background_rate: float = 2000.0
    state_contacts: int = 0
    """If > 0: also fill a worker with one outbound call for each of this many contacts,
    report its RSS and data directory, and time its restart (``make bench``: 1M)."""
    failover_contacts: int = 0
    """If > 0: two workers share one outbound call for each of this many contacts; one is
    SIGKILLed and the survivor timed until it counts on every partition again, without
    and with a standby replica (``make bench``: 1M)."""
    failover_session_timeout: float = 10.0
    live_streams: int = 1000
    """Open SSE streams on the reader while counters change at ``background_rate``."""
    live_seconds: float = 10.0
    code: str | None = None
    """If set: the worker, the reader and the patched bare agent run the source tree at
    this path (``git worktree add DIR REV``), for an A/B against another commit in one
    sitting; the bench itself, its workload and the stock baselines stay this code."""


@dataclass
class Figures:
    """Everything the bench prints, also written as JSON (``--json FILE``)."""

    date: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    aiokafka: dict[str, float] = field(default_factory=dict)
    bare_faust: dict[str, float] = field(default_factory=dict)
    bare_faust_patched: dict[str, float] = field(default_factory=dict)
    worker: dict[str, float] = field(default_factory=dict)
    end_to_end: dict[str, float] = field(default_factory=dict)
    reader: dict[str, float] = field(default_factory=dict)
    reader_uncached: dict[str, float] = field(default_factory=dict)
    """The same load cycling through 2,000 ranges: more than the answer cache keeps."""
    reader_new_connection: dict[str, float] = field(default_factory=dict)
    """The same load, each request on a new connection (a client without keep-alive)."""
    end_to_end_replay: dict[str, float] = field(default_factory=dict)
    """End to end under a load of the workload's own events again, probes on one
    contact."""
    live: dict[str, float] = field(default_factory=dict)
    restart: dict[str, float] = field(default_factory=dict)
    scale_out: dict[str, Any] = field(default_factory=dict)
    state: dict[str, float] = field(default_factory=dict)
    failover: dict[str, Any] = field(default_factory=dict)
    loop_blocks: list[str] = field(default_factory=list)
    """Each block of the worker's loop of 100 ms or more while the bench ran, with the
    innermost frames of the step that held it (from the worker's log)."""
