"""Registers the agents and timers: thin glue between Faust and the processing steps.

Every agent takes batches with ``noack_take`` and acks a batch only after
:func:`batches.process` returned, i.e. once every effect of every message is durable
(Redis scripts returned, records acknowledged by the broker, the tables' changelog
records of the contacts step too) or the message was dead-lettered. A crash therefore
replays at most the unacked tail, and every step is idempotent under replay. Agent
``concurrency`` stays 1 (faust-streaming #606).

Only then does the intake count a message as delivered for its partition's watermark;
a timer sends the watermarks to every keyed partition (``progress.py``), and the join
decides when they pass a callback's cutoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from faust.streams import Stream
from faust.types import TP
from redis.exceptions import TimeoutError as RedisTimeout

from stream_app.core import outages
from stream_app.core.batches import PartitionLost, Step, durably, outage_of, process
from stream_app.core.counters import CounterStore
from stream_app.core.delivery import Outbox, Sender
from stream_app.core.intake import Intake, Message
from stream_app.core.join import Join
from stream_app.core.order import GAP_REFETCHES, GapRepairs, InOrder
from stream_app.core.progress import PROGRESS_INTERVAL, InputPartition, IntakeProgress, Watermarks
from stream_app.core.records import Progress, UnknownFormat, encode_keyed
from stream_app.core.topics import EndOffsets
from stream_app.observe import metrics, taskdump
from stream_app.observe.health import Health
from stream_app.observe.looplag import LoopLag
from stream_app.settings import Settings
from stream_app.worker import faust_compat
from stream_app.worker.app import Wiring

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.05
HEARTBEAT_SECONDS = 1.0
"""Progress is re-sent at least this often, so a restarted join hears it soon."""
PRUNE_EVERY_SECONDS = 300.0
REVOCATION_SEND_SECONDS = 10.0
PROBE_SECONDS = 1.0
"""How often the health probe compares committed and end offsets and pings Redis."""
PROBE_TIMEOUT_SECONDS = 5.0
HOLE_CHECK_SECONDS = 1.0
"""How often partitions standing still behind their log are looked for (faust_compat)."""


def register(wiring: Wiring, settings: Settings, store: CounterStore,
             inputs: Sequence[tuple[str, int]], health: Health, lag: LoopLag) -> Join:
    """Attach the agents and timers to the app; return the join (for its state)."""
    app = wiring.app
    partitions = faust_compat.KeyedPartitions(app, wiring.names.keyed, settings.partitions)
    intake = Intake(wiring.names, store, partitions.of)
    progress = IntakeProgress(settings.timestamp_disorder_seconds)
    watermarks = Watermarks(InputPartition(t, p) for t, p in inputs)
    history = faust_compat.KeyedTable(wiring.history, partitions)
    pending = faust_compat.KeyedTable(wiring.pending, partitions)
    join = Join(settings, wiring.names, store, history, pending, watermarks, partitions)
    producer = Sender(app.producer, lambda: faust_compat.kafka_producer(app.producer))

    async def send_changes() -> None:
        """The tables' changelog records of every write so far, acknowledged."""
        for table in (history, pending):
            await table.send_changes(producer)

    input_topics = {t for t, _ in inputs}

    def batched(step: Step, name: str, tracks_progress: bool) -> Any:
        admission = Admission(
            generation=lambda: app.consumer_generation_id,
            base=lambda tp: faust_compat.processed_base(app, tp),
            refetch=lambda tp, offset, generation: faust_compat.schedule_refetch(
                app.consumer, tp, offset, generation))

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
        await send_changes()

    app.agent(wiring.outbound, name="intake-outbound", concurrency=1)(
        batched(intake.outbound, "intake_outbound", True))
    app.agent(wiring.inbound, name="intake-inbound", concurrency=1)(
        batched(intake.inbound, "intake_inbound", True))
    app.agent(wiring.config, name="intake-config", concurrency=1)(
        batched(intake.config, "intake_config", True))
    app.agent(wiring.keyed, name="contacts", concurrency=1)(
        batched(contacts, "contacts", False))

    last: dict[str, Any] = {"marks": None, "at": 0.0}
    end_offsets = EndOffsets(settings)

    async def before_shutdown(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Unsent table changes are not sent here: the batch that made them is unacked and
        # is replayed (rewriting them) by whoever owns its partitions next; a send that
        # waited here could keep a stopping worker in its group, holding its partitions.
        await end_offsets.close()

    async def before_revocation(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Before the partitions go to their next owner, which recovers from the changelog;
        # bounded, for the same reason (the unacked batch is replayed anyway).
        try:
            await asyncio.wait_for(send_changes(), REVOCATION_SEND_SECONDS)
        except Exception as exc:
            logger.warning("table changes not sent before the revocation: %r", exc)

    app.on_before_shutdown.connect(before_shutdown)
    app.on_partitions_revoked.connect(before_revocation)

    async def send_progress() -> None:
        if app.rebalancing or app.in_recovery:
            return
        assigned = [InputPartition(tp.topic, tp.partition) for tp in app.consumer.assignment()
                    if tp.topic in input_topics]
        if not assigned:
            return
        # The wall clock is read *before* asking the broker for the end offsets: a record
        # appended after the answer carries a timestamp after `now` (within the disorder
        # bound), one appended before it is below an end offset and must be processed.
        now = time.time()
        ends = await end_offsets([(s.topic, s.partition) for s in assigned])

        def caught_up(source: InputPartition) -> bool:
            """Everything below the broker's end offset is processed: by this worker
            (``next_offset``) or before the offset it resumed from (the commit base;
            after a rebalance ``next_offset`` may be stale from an earlier ownership)."""
            tp = TP(source.topic, source.partition)
            base = faust_compat.processed_base(app, tp)
            processed = max(progress.next_offset.get(source, -1), -1 if base is None else base)
            end = ends.get((source.topic, source.partition))
            return end is not None and processed >= end

        marks = progress.watermarks(assigned, caught_up, now)
        tick = time.monotonic()
        if not marks or (marks == last["marks"] and tick - last["at"] < HEARTBEAT_SECONDS):
            if marks:
                health.watermarks_sent()  # unchanged and recently sent: still flowing
            return
        record = encode_keyed(Progress(tuple((s.topic, s.partition, m)
                                             for s, m in sorted(marks.items()))))

        async def emit(outbox: Outbox) -> None:
            for partition in range(settings.partitions):
                await outbox.send(wiring.names.keyed, None, record, partition=partition)

        await durably(producer, emit)
        health.watermarks_sent()
        last.update(marks=marks, at=tick)

    async def prune_idle() -> None:
        if not (app.rebalancing or app.in_recovery):
            logger.info("pruned %d idle contacts", await join.prune_idle())
            await send_changes()

    async def repair_holes() -> None:
        faust_compat.repair_holes(app.consumer)

    probe_health = HealthProbe(app, health, store, end_offsets, lag)

    for timer, every in ((send_progress, PROGRESS_INTERVAL),
                         (repair_holes, HOLE_CHECK_SECONDS),
                         (prune_idle, PRUNE_EVERY_SECONDS),
                         (probe_health, PROBE_SECONDS)):
        name = timer.__name__.replace("_", "-")
        app.timer(every, name=name)(_logged(timer, name, health))
    return join


EXIT_UNKNOWN_FORMAT = 70
"""Exit status of a worker that found state written in a format it does not know."""


def stop_for_unknown_format(exc: UnknownFormat) -> None:
    """Stop the process at once, the batch unacked (as a kill -9 would: safe, every effect
    is idempotent). Going on would misread the state or skip it; a dead letter would lose
    data that is fine. The one line says which table or record, key and version."""
    logger.critical("stopping the worker: %s", exc)
    logging.shutdown()
    os._exit(EXIT_UNKNOWN_FORMAT)


class HealthProbe:
    """The health probe timer: committed vs end offsets of every assigned partition, a
    Redis ping, the stall gauge; a stall past the limit logs, once per stall, where every
    task waits (:mod:`taskdump`). Raises the first failure (counted by the timer)."""

    __name__ = "probe_health"

    def __init__(self, app: Any, health: Health, store: CounterStore,
                 end_offsets: EndOffsets, lag: LoopLag) -> None:
        self.app, self.health, self.store = app, health, store
        self.end_offsets, self.lag = end_offsets, lag
        self.dumped = False

    async def __call__(self) -> None:
        self.lag.start()
        failures = []
        for probe in (self.kafka, self.redis):
            try:
                await probe()
            except Exception as exc:
                failures.append(exc)
        self.watch_stall()
        if failures:
            raise failures[0]

    async def kafka(self) -> None:
        tps = sorted(self.app.consumer.assignment())
        if tps:
            ends = await self.end_offsets([(tp.topic, tp.partition) for tp in tps])  # bounded
            self.health.offsets({tp: faust_compat.processed_base(self.app, tp) for tp in tps},
                                {TP(t, p): end for (t, p), end in ends.items()})

    async def redis(self) -> None:
        try:
            await asyncio.wait_for(self.store.redis.ping(), PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise RedisTimeout("Redis did not answer a ping") from None
        self.health.redis_answered()

    def watch_stall(self) -> None:
        stalled = self.health.stalled_seconds()
        metrics.STALLED.set(stalled)
        if stalled > self.health.stall_after and not self.dumped:
            logger.error("stalled for %.0f s with input waiting; where every task waits:\n%s",
                         stalled, taskdump.dump(event_loops(self.app)))
        self.dumped = stalled > self.health.stall_after


def event_loops(app: Any) -> dict[str, asyncio.AbstractEventLoop]:
    """The worker's loop and its Kafka consumer thread's (for :mod:`taskdump`)."""
    loops = {"main": asyncio.get_running_loop()}
    thread = getattr(app.consumer, "_thread", None)
    if thread is not None and getattr(thread, "thread_loop", None) is not None:
        loops["consumer-thread"] = thread.thread_loop
    return loops


class Admission:
    """Which messages of an agent's batch are processed now, and which events are acked.

    Each partition in offset order, every offset once (``order.py``): the next offsets
    are processed and acked, offsets processed before in this consumer generation only
    acked, and messages past a gap neither; a gap that stays is fetched again through
    ``refetch`` (or skipped, after a few tries). A message fetched before a rebalance
    may belong to a partition this worker lost: processing it would write another
    owner's state (its acks are refused anyway, so the owner processes it); dropped.
    """

    def __init__(self, generation: Callable[[], int | None],
                 base: Callable[[TP], int | None],
                 refetch: Callable[[TP, int, int | None], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.generation = generation
        self.order: InOrder[TP] = InOrder(base)
        self.repairs = GapRepairs()
        self.refetch = refetch
        self.clock = clock

    def __call__(self, events: Sequence[Any]) -> tuple[list[Message], list[Any]]:
        """The messages to process, in order, and the events to ack once they are."""
        generation = self.generation()
        messages, done = [], []
        for event in events:
            m = event.message
            if m.generation_id not in (None, generation):
                continue
            verdict = self.order.admit(generation, m.tp, m.offset)
            if verdict == "gap" and self._skips(m.tp, m.offset, generation):
                verdict = self.order.admit(generation, m.tp, m.offset)
            if verdict != "gap":
                done.append(event)
                if verdict == "next":
                    messages.append(m)
        return messages, done

    def forget(self) -> None:
        """A batch was abandoned half done: start again from the commit bases."""
        self.order.forget()

    def _skips(self, tp: TP, offset: int, generation: int | None) -> bool:
        """Act on a gap before ``offset``; True if it is to be skipped."""
        missing = self.order.expected(tp)
        action = self.repairs.on_gap(tp, missing, self.clock())
        if action == "refetch" and missing is not None:
            logger.warning("%s[%d]: offset %d arrived before %s; fetching from there again",
                           tp.topic, tp.partition, offset, missing)
            self.refetch(tp, missing, generation)
        elif action == "skip":
            logger.error("%s[%d]: offsets %s to %d never arrived after %d re-fetches; taking "
                         "them for a gap in the log", tp.topic, tp.partition, missing,
                         offset - 1, GAP_REFETCHES)
            self.order.skip_to(tp, offset)
        return action == "skip"


def _logged(work: Any, name: str, health: Health) -> Any:
    """A timer's failure is logged and retried at its next tick, never fatal; it is
    counted, and one that keeps failing makes the worker not ready (``health``)."""
    away: set[str] = set()

    async def timer() -> None:
        try:
            await work()
        except Exception as exc:
            metrics.TIMER_FAILURES.labels(name).inc()
            health.timer_ran(name, ok=False)
            service = outage_of(exc)
            if service is None:
                logger.exception("timer %s failed; retrying at its next tick", name)
            else:  # an outage: said once when it starts and when it ends, not per tick
                away.add(service)
                outages.LOG.failed(service, exc)
        else:
            health.timer_ran(name, ok=True)
            while away:
                outages.LOG.succeeded(away.pop())
    timer.__name__ = timer.__qualname__ = name.replace("-", "_")
    return timer
