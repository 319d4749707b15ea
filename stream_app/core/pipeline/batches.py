"""How one batch of messages is processed: retried through outages, isolated on bugs.

Invariant: a batch returns (and is then acked) only when every effect of every message
in it is durable, or the message was dead-lettered. So:

- a Kafka or Redis *outage* (a retriable error) stalls the batch and retries it with
  backoff, as long as it lasts; every step is idempotent, so a retry is harmless;
- any *other* error (a bug, or data the code cannot handle) is isolated: the batch is
  re-run one message at a time, and the message that still fails alone becomes a dead
  letter with code ``internal`` and the exception's type and text. One bad record can
  never become a permanent outage.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from stream_app.core.domain.events import Rejection
from stream_app.core.domain.records import UnknownFormat
from stream_app.core.kafka.delivery import Outbox, Producer
from stream_app.core.outages import outage_of, through_outages
from stream_app.core.pipeline.intake import Message
from stream_app.observe import metrics
from stream_app.observe.logs import at

logger = logging.getLogger(__name__)


class PartitionLost(Exception):
    """A rebalance gave a partition this batch writes state for to another worker.

    The batch is abandoned *unacked*, wherever it stands: its acks would be refused
    anyway (``worker/patches/stale_acks.py``), so the new owner processes it again, and every effect
    already made is idempotent. Writing on would race the new owner's writes to the
    same changelog partition and could overwrite newer state with older.
    """

Step = Callable[[Outbox, Sequence[Message]], Awaitable[None]]
DeadLetterer = Callable[[Outbox, Message, Rejection], Awaitable[None]]


async def process(producer: Producer, step: Step, messages: Sequence[Message],
                  dead_letter: DeadLetterer) -> None:
    """Run ``step`` on ``messages`` until every effect is durable (see module doc)."""
    try:
        await durably(producer, lambda outbox: step(outbox, messages))
    except (PartitionLost, UnknownFormat):  # not the message's fault: never a dead letter
        raise
    except Exception as exc:
        if len(messages) > 1:
            logger.warning("re-running a batch of %d one message at a time after %s: %s",
                           len(messages), type(exc).__name__, exc)
            for message in messages:
                await process(producer, step, [message], dead_letter)
            return
        message = messages[0]
        logger.error("dead-lettering %s[%d]@%d after an internal error: %s: %s",
                     message.topic, message.partition, message.offset, type(exc).__name__, exc,
                     exc_info=exc, extra=at(message.topic, message.partition, message.offset))
        metrics.INTERNAL_ERRORS.labels(message.topic).inc()
        rejection = Rejection(code="internal", reason=f"{type(exc).__name__}: {exc}")
        await durably(producer, lambda outbox: dead_letter(outbox, message, rejection))


async def durably(producer: Producer, effect: Callable[[Outbox], Awaitable[None]]) -> None:
    """Apply ``effect`` and wait for its records' delivery, retrying through outages
    (``outages.py``: backoff with jitter, logged once per outage). Any error that is not
    an outage propagates."""
    async def attempt() -> None:
        outbox = Outbox(producer)
        await effect(outbox)
        await outbox.delivered()

    await through_outages(attempt, outage_of)


