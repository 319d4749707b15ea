"""One agent's loop: take a batch, admit it in offset order, process it, then ack it.

The batches come from the agent's inbox (``worker/patches/inbox.py``), not through
Faust's per-message stream: the same fetches, subscription, acks and commits, without
an ``Event``, a channel queue and a stream step per message.

A batch is acked only after :func:`~stream_app.core.pipeline.batches.process` returned,
i.e. once every effect of every message is durable (Redis scripts returned, records
acknowledged by the broker, the tables' changelog records of the contacts step too) or
the message was dead-lettered. A crash therefore replays at most the unacked tail, and
every step is idempotent under replay. Agent ``concurrency`` stays 1 (faust-streaming
#606). Only then does an intake agent count a message as delivered for its partition's
watermark (``tracks_progress``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stream_app.core.domain.progress import InputPartition, IntakeProgress
from stream_app.core.domain.records import UnknownFormat
from stream_app.core.kafka.delivery import Sender
from stream_app.core.pipeline.batches import PartitionLost, Step, process
from stream_app.core.pipeline.intake import Message
from stream_app.observe.health import Health
from stream_app.worker.admission import Admission
from stream_app.worker.patches.inbox import Inbox

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.05
EXIT_UNKNOWN_FORMAT = 70
"""Exit status of a worker that found state written in a format it does not know."""

DeadLetter = Callable[..., Any]


class Source(Protocol):
    """Where an agent's batches come from and where their acks go."""

    async def take(self, most: int, within: float) -> list[Any]:
        """Up to ``most`` Faust messages, waiting at most ``within`` s for more."""

    def ack(self, message: Any) -> None:
        """The message's offset may be committed (once every earlier one may)."""


@dataclass
class BatchAgent:
    """The body of one Faust agent (its ``name`` is the agent's)."""

    name: str
    step: Step
    admission: Admission
    producer: Sender
    dead_letter: DeadLetter
    health: Health
    progress: IntakeProgress | None
    """The intake's progress, told what was delivered; None for the join."""

    async def __call__(self, source: Source) -> None:
        while True:
            await self.one_batch(source)

    async def one_batch(self, source: Source) -> None:
        batch = await source.take(BATCH_SIZE, BATCH_WITHIN_SECONDS)
        messages, done = self.admission(batch)
        self.health.processed(len(done))
        if messages and not await self._process(messages):
            return
        self._delivered(messages)
        for message in done:
            source.ack(message)

    async def _process(self, messages: Sequence[Message]) -> bool:
        """False: the batch's partition was lost meanwhile; it stays unacked."""
        try:
            await process(self.producer, self.step, messages, self.dead_letter)
        except PartitionLost as lost:
            logger.info("abandoning a batch unacked: %s", lost)
            self.admission.forget()
            return False
        except UnknownFormat as exc:
            stop_for_unknown_format(exc)
        return True

    def _delivered(self, messages: Sequence[Message]) -> None:
        if self.progress is None:
            return
        for m in messages:
            self.progress.delivered(InputPartition(m.topic, m.partition), m.offset, m.timestamp)


@dataclass
class InboxSource:
    """A Faust agent's batches from its inbox; acks straight to the app's consumer."""

    inbox: Inbox
    app: Any

    async def take(self, most: int, within: float) -> list[Any]:
        batch = await self.inbox.take(most, within)
        seen = self.app.monitor.stream_inbound_time  # Faust's "stream stalled" check
        now = time.monotonic()
        for tp in {m.tp for m in batch}:
            seen[tp] = now
        return batch

    def ack(self, message: Any) -> None:
        self.app.consumer.ack(message)


def stop_for_unknown_format(exc: UnknownFormat) -> None:
    """Stop the process at once, the batch unacked (as a kill -9 would: safe, every effect
    is idempotent). Going on would misread the state or skip it; a dead letter would lose
    data that is fine. The one line says which table or record, key and version."""
    logger.critical("stopping the worker: %s", exc)
    logging.shutdown()
    os._exit(EXIT_UNKNOWN_FORMAT)
