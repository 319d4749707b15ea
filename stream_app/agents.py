"""Registers the agents and timers: thin glue between Faust and the processing steps.

Every agent takes batches with ``noack_take`` and acks a batch only after
:func:`batches.process` returned, i.e. once every effect of every message is durable
(Redis scripts returned, records acknowledged by the broker) or the message was
dead-lettered. A crash therefore replays at most the unacked tail, and every step is
idempotent under replay. Agent ``concurrency`` stays 1 (faust-streaming #606).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from faust.types import StreamT

from . import faust_compat
from .app import Wiring
from .batches import Step, durably, process
from .counters import CounterStore
from .delivery import Outbox
from .intake import Intake, Message
from .join import Join
from .settings import Settings

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.05


def register(wiring: Wiring, settings: Settings, store: CounterStore) -> Join:
    """Attach the agents and timers to the app; return the join (for its state)."""
    app = wiring.app
    intake = Intake(wiring.names, store)
    join = Join(settings, wiring.names, store, wiring.history, wiring.pending)
    tables = (wiring.history, wiring.pending)

    def batched(step: Step, name: str) -> Any:
        async def agent(stream: StreamT) -> None:
            async for events in stream.noack_take(BATCH_SIZE, within=BATCH_WITHIN_SECONDS):
                messages = [event.message for event in events]
                await process(app.producer, step, messages, intake.dead_letter)
                for event in events:
                    await stream.ack(event)
        agent.__name__ = agent.__qualname__ = name
        return agent

    async def contacts(outbox: Outbox, messages: Sequence[Message]) -> None:
        await faust_compat.know_changelogs(app, tables)
        await join.on_records(outbox, messages)

    app.agent(wiring.outbound, name="intake-outbound", concurrency=1)(
        batched(intake.outbound, "intake_outbound"))
    app.agent(wiring.inbound, name="intake-inbound", concurrency=1)(
        batched(intake.inbound, "intake_inbound"))
    app.agent(wiring.config, name="intake-config", concurrency=1)(
        batched(intake.config, "intake_config"))
    app.agent(wiring.keyed, name="contacts", concurrency=1)(batched(contacts, "contacts"))

    def ready() -> bool:
        return not app.rebalancing and not app.in_recovery

    async def decide_due() -> None:
        if ready():
            await faust_compat.know_changelogs(app, tables)
            await _logged(durably(app.producer, join.decide_due), "decide-due")

    async def prune_idle() -> None:
        if ready():
            await faust_compat.know_changelogs(app, tables)
            await _logged(join.prune_idle(), "prune-idle")

    tick = max(0.05, min(1.0, settings.match_grace_seconds / 4))
    app.timer(tick, name="decide-due")(decide_due)
    app.timer(60.0, name="prune-idle")(prune_idle)
    return join


async def _logged(work: Any, name: str) -> None:
    """A timer's failure is logged and retried at its next tick, never fatal."""
    try:
        await work
    except Exception:
        logger.exception("timer %s failed; retrying at its next tick", name)
