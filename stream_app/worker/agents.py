"""Registers the agents and timers: thin glue between Faust and the processing steps.

Every agent takes batches with ``noack_take`` and acks a batch only after
:func:`~stream_app.core.batches.process` returned, i.e. once every effect of every
message is durable (Redis scripts returned, records acknowledged by the broker, the
tables' changelog records of the contacts step too) or the message was dead-lettered. A
crash therefore replays at most the unacked tail, and every step is idempotent under
replay. Agent ``concurrency`` stays 1 (faust-streaming #606).

Only then does the intake count a message as delivered for its partition's watermark;
a timer sends the watermarks to every keyed partition (:mod:`.emitter`), and the join
decides when they pass a callback's cutoff.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from faust.streams import Stream
from faust.types import TP

from stream_app.core import topics
from stream_app.core.batches import PartitionLost, Step, durably, process
from stream_app.core.counters import CounterStore
from stream_app.core.delivery import Outbox, Sender
from stream_app.core.intake import Intake, Message
from stream_app.core.join import Join
from stream_app.core.progress import PROGRESS_INTERVAL, InputPartition, IntakeProgress, Watermarks
from stream_app.core.records import UnknownFormat
from stream_app.core.stats_topic import RECHECK_SECONDS, StatsPublisher
from stream_app.observe.health import Health
from stream_app.observe.looplag import LoopLag
from stream_app.settings import Settings
from stream_app.worker import holes
from stream_app.worker.admission import Admission
from stream_app.worker.app import Wiring
from stream_app.worker.changes import TableChanges
from stream_app.worker.emitter import ProgressEmitter
from stream_app.worker.housekeeping import (
    HOLE_CHECK_SECONDS,
    INPUT_CHECK_SECONDS,
    PRUNE_EVERY_SECONDS,
    Housekeeping,
    logged,
)
from stream_app.worker.metadata_sync import WATCH_SECONDS, MetadataSyncGuard, faust_clients
from stream_app.worker.patches.absent_offsets import ABSENT
from stream_app.worker.probe import HealthProbe
from stream_app.worker.tables import KeyedPartitions, KeyedTable, kafka_producer, processed_base

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.05
PROBE_SECONDS = 1.0
"""How often the health probe compares committed and end offsets and pings Redis."""
EXIT_UNKNOWN_FORMAT = 70
"""Exit status of a worker that found state written in a format it does not know."""


def register(wiring: Wiring, settings: Settings, store: CounterStore,
             inputs: Sequence[tuple[str, int]], health: Health, lag: LoopLag) -> HealthProbe:
    """Attach the agents and timers to the app; return the health probe (the liveness
    page asks it to log where every task waits before it answers "stalled")."""
    app = wiring.app
    partitions = KeyedPartitions(app, wiring.names.keyed, settings.partitions)
    intake = Intake(wiring.names, store, partitions.of)
    progress = IntakeProgress(settings.timestamp_disorder_seconds)
    watermarks = Watermarks(InputPartition(t, p) for t, p in inputs)
    history = KeyedTable(wiring.history, partitions)
    pending = KeyedTable(wiring.pending, partitions)
    join = Join(settings, wiring.names, store, history, pending, watermarks, partitions)
    producer = Sender(app.producer, lambda: kafka_producer(app.producer))
    changes = TableChanges((history, pending), producer)
    stats = StatsPublisher(store, wiring.names.stats)
    servers = topics.bootstrap_servers(settings)
    admissions: list[Admission] = []
    ABSENT.watch([*{t for t, _ in inputs}, wiring.names.keyed])

    def batched(step: Step, name: str, tracks_progress: bool) -> Any:
        admission = Admission(
            generation=lambda: app.consumer_generation_id,
            base=lambda tp: processed_base(app, tp),
            refetch=lambda tp, offset, generation: holes.schedule_refetch(
                app.consumer, tp, offset, generation),
            ask=lambda tp, start, stop: topics.records_between(
                servers, tp.topic, tp.partition, start, stop),
            absent=ABSENT)
        admissions.append(admission)

        async def agent(stream: Stream[Any]) -> None:
            async for events in stream.noack_take(BATCH_SIZE, within=BATCH_WITHIN_SECONDS):
                messages, done = admission(events)
                health.processed(len(done))
                if messages:
                    try:
                        await process(producer, step, messages, intake.dead_letter)
                    except PartitionLost as lost:
                        logger.info("abandoning a batch unacked: %s", lost)
                        admission.forget()
                        continue
                    except UnknownFormat as exc:
                        stop_for_unknown_format(exc)
                if tracks_progress:
                    for m in messages:
                        progress.delivered(InputPartition(m.topic, m.partition), m.offset,
                                           m.timestamp)
                for event in done:
                    await stream.ack(event)
        agent.__name__ = agent.__qualname__ = name
        return agent

    async def contacts(outbox: Outbox, messages: Sequence[Message]) -> None:
        await join.on_records(outbox, messages)
        await changes.send()
        await stats.publish(outbox, join.traces)

    for channel, step, name, tracks in (
            (wiring.outbound, intake.outbound, "intake-outbound", True),
            (wiring.inbound, intake.inbound, "intake-inbound", True),
            (wiring.config, intake.config, "intake-config", True),
            (wiring.keyed, contacts, "contacts", False)):
        app.agent(channel, name=name, concurrency=1)(
            batched(step, name.replace("-", "_"), tracks))

    end_offsets = topics.EndOffsets(settings)
    partition_counts = topics.PartitionCounts(settings)

    async def before_shutdown(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await end_offsets.close()  # table changes are not sent here (``changes.py``)
        await partition_counts.close()

    app.on_before_shutdown.connect(before_shutdown)
    app.on_partitions_revoked.connect(changes.before_revocation)

    def busy() -> bool:
        return bool(app.rebalancing or app.in_recovery)

    async def send(record: bytes) -> None:
        async def emit(outbox: Outbox) -> None:
            for partition in range(settings.partitions):
                await outbox.send(wiring.names.keyed, None, record, partition=partition)
        await durably(producer, emit)

    input_topics = {t for t, _ in inputs}
    emitter = ProgressEmitter(
        progress, busy=busy, end_offsets=end_offsets, send=send, sent=health.watermarks_sent,
        assigned=lambda: [InputPartition(tp.topic, tp.partition)
                          for tp in app.consumer.assignment() if tp.topic in input_topics],
        base=lambda s: processed_base(app, TP(s.topic, s.partition)),
        absent=lambda s, offset: ABSENT.run_end((s.topic, s.partition), offset))
    chores = Housekeeping(busy, join.prune_idle, changes.send,
                          lambda: holes.repair_holes(app.consumer),
                          partition_counts, watermarks)
    probe = HealthProbe(app, health, store, end_offsets, lag,
                        holding=lambda: [tp for a in admissions for tp in a.holding()])
    async def recheck_stats() -> None:
        await durably(producer, stats.recheck)

    for timer, every, name in ((emitter, PROGRESS_INTERVAL, "send-progress"),
                               (recheck_stats, RECHECK_SECONDS / 2, "recheck-stats"),
                               (chores.repair_holes, HOLE_CHECK_SECONDS, "repair-holes"),
                               (chores.prune_idle, PRUNE_EVERY_SECONDS, "prune-idle"),
                               (chores.watch_inputs, INPUT_CHECK_SECONDS, "watch-inputs"),
                               (probe, PROBE_SECONDS, "probe-health"),
                               (MetadataSyncGuard(lambda: faust_clients(app)), WATCH_SECONDS,
                                "guard-metadata-sync")):
        app.timer(every, name=name)(logged(timer, name, health))
    return probe


def stop_for_unknown_format(exc: UnknownFormat) -> None:
    """Stop the process at once, the batch unacked (as a kill -9 would: safe, every effect
    is idempotent). Going on would misread the state or skip it; a dead letter would lose
    data that is fine. The one line says which table or record, key and version."""
    logger.critical("stopping the worker: %s", exc)
    logging.shutdown()
    os._exit(EXIT_UNKNOWN_FORMAT)
