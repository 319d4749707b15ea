"""Starts the stream processor: topics checked, app built, agents attached, run."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import faust
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_app.core.kafka.topics import (
    TopicLayoutError,
    cluster_id,
    ensure_topics,
    input_partitions,
)
from stream_app.core.store.counters import CounterStore
from stream_app.loops import use_event_loop
from stream_app.observe import logs, logsummary, metrics, taskdump
from stream_app.observe.gcpauses import GcPauses, freeze_startup_heap
from stream_app.observe.health import Health
from stream_app.observe.looplag import LoopLag
from stream_app.observe.metrics import observe_assignment, observe_lag
from stream_app.settings import Settings
from stream_app.worker import patch_registry
from stream_app.worker.app import create_app
from stream_app.worker.probe import HealthProbe, event_loops
from stream_app.worker.topology import register

logger = logging.getLogger(__name__)

BROKER_WAIT_SECONDS = 60.0
WAIT_REPORT_SECONDS = 10.0
"""How often the wait for Kafka at start is logged."""


def run_worker(settings: Settings, loglevel: str = "INFO") -> None:
    """Run until SIGTERM/SIGINT; refuses to start on a bad topic layout."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    use_event_loop(settings.event_loop)
    # Summarised from the first line: waiting for a broker at start repeats too.
    summary = logsummary.RepeatSummary()
    logs.configure(loglevel, settings.log_format, summary=summary)
    inputs, cluster = asyncio.run(_wait_for_topics(settings))
    asyncio.set_event_loop(asyncio.new_event_loop())
    patch_registry.install()
    wiring = create_app(settings, cluster)
    store = CounterStore.from_settings(settings)
    health = Health(settings.stall_seconds)
    probe = register(wiring, settings, store, inputs, health,
                     LoopLag(settings.loop_block_log_seconds))
    _add_pages(wiring.app, health, probe)
    wiring.app.timer(logsummary.INTERVAL, name="log-summary")(_flushing(summary))
    # Faust leaves the logging as configured (one handler, one format: ``observe/logs``);
    # its progress spinner would write terminal escape codes into the log.
    worker = faust.Worker(wiring.app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.spinner = None
    # mode leaves the root logger at DEBUG and filters in the handlers, so every debug
    # call of the libraries builds a record nobody prints (faust logs each send: ~3% of
    # the hot path, aiokafka ~4%); keep them off unless the worker runs at DEBUG.
    level = logging.getLevelName(loglevel.upper())
    for library in ("aiokafka", "faust", "mode"):
        logging.getLogger(library).setLevel(max(logging.INFO, level if isinstance(level, int)
                                                  else logging.INFO))
    freeze_startup_heap()  # the libraries and the app: out of every later collection
    _watch_gc(GcPauses().install())
    worker.execute_from_commandline()


def _watch_gc(pauses: GcPauses) -> None:
    """The collector's pauses as metrics, read at scrape time (the hook itself only
    stores floats: see ``gcpauses``)."""
    metrics.GC_PAUSE_WORST.set_function(lambda: pauses.worst)
    metrics.GC_PAUSE_TOTAL.set_function(lambda: pauses.total)


def _flushing(summary: logsummary.RepeatSummary) -> Any:
    async def log_summary() -> None:
        summary.flush()
    return log_summary


async def _wait_for_topics(settings: Settings) -> tuple[list[tuple[str, int]], str]:
    """Create and check the topics; return the input partitions progress must cover, and
    the Kafka cluster's id (it names the state directory)."""
    deadline = time.monotonic() + BROKER_WAIT_SECONDS
    next_report = 0.0
    while True:
        try:
            await ensure_topics(settings)
            return await input_partitions(settings), await cluster_id(settings)
        except TopicLayoutError as exc:
            raise SystemExit(f"error: {exc}") from None
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"error: Kafka at {settings.kafka_bootstrap} is not "
                                 f"reachable: {exc}") from None
            if time.monotonic() >= next_report:  # once, then every WAIT_REPORT_SECONDS
                logger.warning("waiting for Kafka at %s (up to %.0f s): %s",
                               settings.kafka_bootstrap, BROKER_WAIT_SECONDS, exc)
                next_report = time.monotonic() + WAIT_REPORT_SECONDS
            await asyncio.sleep(1.0)


def _add_pages(app: faust.App, health: Health, probe: HealthProbe) -> None:
    @app.page("/metrics")  # type: ignore[arg-type]
    async def metrics(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        monitor = app.monitor
        observe_lag(monitor.tp_end_offsets or {}, monitor.tp_committed_offsets or {})
        observe_assignment(app.consumer.assignment())
        response = web.bytes(generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    @app.page("/healthz")  # type: ignore[arg-type]
    async def healthz(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        """Liveness: fails once the worker is stalled (``health.py``). The first failing
        answer logs where every task waits (a supervisor kills the process on it, maybe
        before the probe timer's next tick would have)."""
        ok, body = health.live()
        if not ok:
            probe.watch_stall()
        return web.json(body, status=200 if ok else 503)

    @app.page("/readyz")  # type: ignore[arg-type]
    async def readyz(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        ok, body = health.ready(len(app.consumer.assignment()),
                                bool(app.rebalancing or app.in_recovery))
        return web.json(body, status=200 if ok else 503)

    @app.page("/debug/tasks")  # type: ignore[arg-type]
    async def tasks(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        """Where every task of the worker waits (evidence for a hang); bound to the
        worker's web address, like /metrics."""
        return web.text(taskdump.dump(event_loops(app)))
