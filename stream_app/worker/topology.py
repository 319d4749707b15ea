"""The worker's topology, declared: its four agents and seven timers at a glance
(:meth:`Topology.agents`, :meth:`Topology.timers`), each a thin glue between Faust and a
processing step of ``core/pipeline``.

    callback-events-outbound ─┐                         ┌─ Redis counters
    callback-events-inbound  ─┼─ intake-* ─ keyed ─ contacts (join) ─┼─ callback-outcomes
    callback-agent-config    ─┘  (validate, key by          └─ callback-stats
                                  environment + contact)

An agent acks a batch only once every effect of it is durable (:mod:`.batch_agent`).
The intake agents count what they delivered for their partitions' watermarks; the
``send-progress`` timer sends the watermarks to every keyed partition
(:mod:`.emitter`), and the join decides when they pass a callback's cutoff.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from stream_app.core.domain.progress import (
    PROGRESS_INTERVAL,
    InputPartition,
    IntakeProgress,
    Watermarks,
)
from stream_app.core.kafka import topics
from stream_app.core.kafka.delivery import Outbox, Sender
from stream_app.core.pipeline.batches import Step, durably
from stream_app.core.pipeline.intake import Intake, Message
from stream_app.core.pipeline.join import Join
from stream_app.core.pipeline.stats_topic import RECHECK_SECONDS, StatsPublisher
from stream_app.core.store.counters import CounterStore
from stream_app.observe.health import Health
from stream_app.observe.looplag import LoopLag
from stream_app.settings import Settings
from stream_app.worker import holes
from stream_app.worker.admission import Admission
from stream_app.worker.app import Wiring
from stream_app.worker.batch_agent import BatchAgent, InboxSource
from stream_app.worker.changelog import TableChanges
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
from stream_app.worker.patches.inbox import inbox_for
from stream_app.worker.probe import HealthProbe
from stream_app.worker.tables import KeyedPartitions, KeyedTable, kafka_producer, processed_base

logger = logging.getLogger(__name__)

PROBE_SECONDS = 1.0
"""How often the health probe compares committed and end offsets and pings Redis."""


@dataclass(frozen=True)
class AgentSpec:
    name: str
    channel: Any
    step: Step
    tracks_progress: bool
    """An intake agent: what it delivers moves its input partition's watermark."""


@dataclass(frozen=True)
class TimerSpec:
    name: str
    every: float
    run: Callable[[], Awaitable[None]]


class Topology:
    """The worker's parts, built once; :func:`register` attaches them to the app."""

    def __init__(self, wiring: Wiring, settings: Settings, store: CounterStore,
                 inputs: Sequence[tuple[str, int]], health: Health, lag: LoopLag) -> None:
        app = wiring.app
        self.wiring, self.settings, self.health = wiring, settings, health
        self.input_topics = {t for t, _ in inputs}
        self.partitions = KeyedPartitions(app, wiring.names.keyed, settings.partitions)
        self.intake = Intake(wiring.names, store, self.partitions.of)
        self.progress = IntakeProgress(settings.timestamp_disorder_seconds)
        self.watermarks = Watermarks(InputPartition(t, p) for t, p in inputs)
        tables = (KeyedTable(wiring.history, self.partitions),
                  KeyedTable(wiring.pending, self.partitions))
        self.join = Join(settings, wiring.names, store, *tables, self.watermarks,
                         self.partitions)
        self.producer = Sender(app.producer, lambda: kafka_producer(app.producer))
        self.changes = TableChanges(tables, self.producer)
        self.stats = StatsPublisher(store, wiring.names.stats)
        self.end_offsets = topics.EndOffsets(settings)
        self.partition_counts = topics.PartitionCounts(settings)
        self.admissions: list[Admission] = []
        self.chores = Housekeeping(self.busy, self.join.prune_idle, self.changes.send,
                                   lambda: holes.repair_holes(app.consumer),
                                   self.partition_counts, self.watermarks)
        self.probe = HealthProbe(app, health, store, self.end_offsets, lag,
                                 holding=lambda: [tp for a in self.admissions
                                                  for tp in a.holding()])
        ABSENT.watch([*self.input_topics, wiring.names.keyed])

    def agents(self) -> tuple[AgentSpec, ...]:
        w = self.wiring
        return (AgentSpec("intake-outbound", w.outbound, self.intake.outbound, True),
                AgentSpec("intake-inbound", w.inbound, self.intake.inbound, True),
                AgentSpec("intake-config", w.config, self.intake.config, True),
                AgentSpec("contacts", w.keyed, self.contacts, False))

    def timers(self) -> tuple[TimerSpec, ...]:
        return (TimerSpec("send-progress", PROGRESS_INTERVAL, self.emitter()),
                TimerSpec("recheck-stats", RECHECK_SECONDS / 2, self.recheck_stats),
                TimerSpec("repair-holes", HOLE_CHECK_SECONDS, self.chores.repair_holes),
                TimerSpec("prune-idle", PRUNE_EVERY_SECONDS, self.chores.prune_idle),
                TimerSpec("watch-inputs", INPUT_CHECK_SECONDS, self.chores.watch_inputs),
                TimerSpec("probe-health", PROBE_SECONDS, self.probe),
                TimerSpec("guard-metadata-sync", WATCH_SECONDS,
                          MetadataSyncGuard(lambda: faust_clients(self.wiring.app))))

    async def contacts(self, outbox: Outbox, messages: Sequence[Message]) -> None:
        """The join's step: decide, then the tables' changes and the stats records."""
        await self.join.on_records(outbox, messages)
        await self.changes.send()
        await self.stats.publish(outbox, self.join.traces)

    async def recheck_stats(self) -> None:
        await durably(self.producer, self.stats.recheck)

    def busy(self) -> bool:
        app = self.wiring.app
        return bool(app.rebalancing or app.in_recovery)

    def batch_agent(self, spec: AgentSpec) -> BatchAgent:
        app, servers = self.wiring.app, topics.bootstrap_servers(self.settings)
        admission = Admission(
            generation=lambda: app.consumer_generation_id,
            base=lambda tp: processed_base(app, tp),
            refetch=lambda tp, offset, generation: holes.schedule_refetch(
                app.consumer, tp, offset, generation),
            ask=lambda tp, start, stop: topics.records_between(
                servers, tp.topic, tp.partition, start, stop),
            absent=ABSENT)
        self.admissions.append(admission)
        return BatchAgent(spec.name, spec.step, admission, self.producer,
                          self.intake.dead_letter, self.health,
                          self.progress if spec.tracks_progress else None)

    def emitter(self) -> ProgressEmitter:
        app, keyed = self.wiring.app, self.wiring.names.keyed

        async def send(record: bytes) -> None:
            async def emit(outbox: Outbox) -> None:
                for partition in range(self.settings.partitions):
                    await outbox.send(keyed, None, record, partition=partition)
            await durably(self.producer, emit)

        return ProgressEmitter(
            self.progress, busy=self.busy, end_offsets=self.end_offsets, send=send,
            sent=self.health.watermarks_sent,
            assigned=lambda: [InputPartition(tp.topic, tp.partition)
                              for tp in app.consumer.assignment()
                              if tp.topic in self.input_topics],
            base=lambda s: processed_base(app, TP(s.topic, s.partition)),
            absent=lambda s, offset: ABSENT.run_end((s.topic, s.partition), offset))

    async def before_shutdown(self, sender: Any, /, *args: Any, signal: Any,
                              **kwargs: Any) -> None:
        await self.end_offsets.close()  # table changes are not sent here (changelog.py)
        await self.partition_counts.close()


def register(wiring: Wiring, settings: Settings, store: CounterStore,
             inputs: Sequence[tuple[str, int]], health: Health, lag: LoopLag) -> HealthProbe:
    """Attach the agents and timers to the app; return the health probe (the liveness
    page asks it to log where every task waits before it answers "stalled")."""
    topology = Topology(wiring, settings, store, inputs, health, lag)
    app = wiring.app
    for spec in topology.agents():
        body = topology.batch_agent(spec)
        source = InboxSource(inbox_for(spec.channel.get_topic_name(), app.flow_control), app)
        app.agent(spec.channel, name=spec.name, concurrency=1)(_named(body, source, spec.name))
    for timer in topology.timers():
        app.timer(timer.every, name=timer.name)(logged(timer.run, timer.name, health))
    app.on_before_shutdown.connect(topology.before_shutdown)
    app.on_partitions_revoked.connect(topology.changes.before_revocation)
    return topology.probe


def _named(body: BatchAgent, source: InboxSource, name: str) -> Callable[..., Any]:
    """A function Faust can name the agent after (it reads ``__name__``). Faust's stream
    stays unread: the agent's messages come through its inbox (``patches/inbox.py``);
    the stream is what subscribes the agent's topic."""
    async def run(stream: Any) -> None:
        await body(source)
    run.__name__ = run.__qualname__ = name.replace("-", "_")
    return run
