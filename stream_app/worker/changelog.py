"""The tables' changelog records: sent with every batch, and before partitions go.

A batch of the contacts agent is acked only after the changelog records of its table
writes were sent and acknowledged (``tables.KeyedTable``), like every other record it
causes. A revocation sends what is unsent before the partitions go to their next owner,
which recovers from the changelog; bounded by :data:`REVOCATION_SEND_SECONDS`, because
the unacked batch that made the changes is replayed (rewriting them) by whoever owns its
partitions next. A shutdown sends nothing: a send that waited there could keep a
stopping worker in its group, holding its partitions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from stream_app.core.kafka.delivery import Producer
from stream_app.worker.tables import KeyedTable

logger = logging.getLogger(__name__)

REVOCATION_SEND_SECONDS = 10.0


class TableChanges:
    def __init__(self, tables: Sequence[KeyedTable], producer: Producer) -> None:
        self.tables, self.producer = tables, producer

    async def send(self) -> None:
        """The changelog records of every write so far, acknowledged."""
        for table in self.tables:
            await table.send_changes(self.producer)

    async def before_revocation(self, sender: Any, /, *args: Any, signal: Any,
                                **kwargs: Any) -> None:
        try:
            await asyncio.wait_for(self.send(), REVOCATION_SEND_SECONDS)
        except Exception as exc:
            logger.warning("table changes not sent before the revocation: %r", exc)
