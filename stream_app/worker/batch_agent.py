"""One agent's loop: take a batch, admit it in offset order, process it, then ack it.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.streams import Stream

from stream_app.core.domain.progress import InputPartition, IntakeProgress
from stream_app.core.domain.records import UnknownFormat
from stream_app.core.kafka.delivery import Sender
from stream_app.core.pipeline.batches import PartitionLost, Step, process
from stream_app.core.pipeline.intake import Message
from stream_app.observe.health import Health
from stream_app.worker.admission import Admission

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.05
EXIT_UNKNOWN_FORMAT = 70
"""Exit status of a worker that found state written in a format it does not know."""

DeadLetter = Callable[..., Any]


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

    async def __call__(self, stream: Stream[Any]) -> None:
        async for events in stream.noack_take(BATCH_SIZE, within=BATCH_WITHIN_SECONDS):
            messages, done = self.admission(events)
            self.health.processed(len(done))
            if messages and not await self._process(messages):
                continue
            self._delivered(messages)
            for event in done:
                await stream.ack(event)

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


def stop_for_unknown_format(exc: UnknownFormat) -> None:
    """Stop the process at once, the batch unacked (as a kill -9 would: safe, every effect
    is idempotent). Going on would misread the state or skip it; a dead letter would lose
    data that is fine. The one line says which table or record, key and version."""
    logger.critical("stopping the worker: %s", exc)
    logging.shutdown()
    os._exit(EXIT_UNKNOWN_FORMAT)
