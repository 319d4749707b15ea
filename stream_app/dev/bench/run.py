"""Runs every part of the bench in order, on one workload."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from stream_app.core.store.counters import CounterStore
from stream_app.dev.bench.baselines import bare_faust, plain_aiokafka
from stream_app.dev.bench.config import BenchConfig, Figures
from stream_app.dev.bench.failover import failover
from stream_app.dev.bench.live_streams import live_streams, raise_open_files
from stream_app.dev.bench.measure import Progress, free_port, loop_blocks, metric_value
from stream_app.dev.bench.reader_load import populate_year, reader_load
from stream_app.dev.bench.summary import ratios
from stream_app.dev.bench.worker import end_to_end, large_state, restart, scale_out, worker_run
from stream_app.dev.bench.workload import Topics, create_topics, workload
from stream_app.dev.processes import StreamAppProcess
from stream_app.dev.simulate import produce
from stream_app.settings import Settings


def children_run(code: str | None) -> None:
    """With ``--code DIR``, every child process imports ``stream_app`` from DIR first:
    it is their working directory (``python -m`` puts that first on ``sys.path``, before
    ``PYTHONPATH`` and the installed package). This process's own imports are settled
    (``sys.path`` is read at start), so only the children change."""
    if not code:
        return
    tree = Path(code).resolve()
    if not (tree / "stream_app" / "__init__.py").is_file():
        raise BenchError(f"--code {code}: no stream_app package there")
    os.environ["PYTHONPATH"] = str(tree)
    os.chdir(tree)


class BenchError(Exception):
    """A bench argument that cannot be used (one line for the CLI)."""


async def run_bench(config: BenchConfig, settings: Settings,
                    progress: Progress | None = None) -> Figures:
    """Kafka and Redis from ``settings``; everything else is the bench's own (fresh
    topics, consumer groups, environments and a temporary data directory)."""
    progress = progress or Progress()
    children_run(config.code)
    bootstrap, redis_url = settings.kafka_bootstrap, settings.redis_url
    run = uuid.uuid4().hex[:8]
    raise_open_files()
    workdir = Path(tempfile.mkdtemp(prefix=f"stream-app-bench-{run}-"))
    topics = Topics.of_run(run)
    figures = Figures(date=time.strftime("%Y-%m-%d"), config=asdict(config))
    traffic = workload(config, f"bench-{run}")
    figures.events = len(traffic.messages)
    await create_topics(bootstrap, topics, config.partitions)
    sent = [0]

    def produced(n: int) -> None:
        sent[0] += n
        progress("producing the workload", sent[0], figures.events)

    await produce(bootstrap, topics.as_kinds(), traffic, progress=produced)
    figures.aiokafka = await plain_aiokafka(bootstrap, topics, figures.events, progress)
    figures.bare_faust = await bare_faust(bootstrap, topics, figures.events, workdir, progress)
    figures.bare_faust_patched = await bare_faust(bootstrap, topics, figures.events, workdir,
                                                  progress, patched=True)

    reader_env, probe_env = f"bench-reader-{run}", f"bench-probe-{run}"
    port, reader_port = free_port(), free_port()
    child_settings = {"KAFKA_BOOTSTRAP": bootstrap, "REDIS_URL": redis_url,
                "APP_ID": f"bench-worker-{run}", "PARTITIONS": str(config.partitions),
                "TOPIC_OUTBOUND": topics.outbound, "TOPIC_INBOUND": topics.inbound,
                "TOPIC_CONFIG": topics.config, "TOPIC_OUTCOMES": f"bench-outcomes-{run}",
                "TOPIC_DLQ": f"bench-dlq-{run}", "MATCH_GRACE_SECONDS": "2",
                "TIMESTAMP_DISORDER_SECONDS": "1", "WORKER_WEB_PORT": str(port),
                "DATA_DIR": str(workdir / "worker"), "READER_PORT": str(reader_port),
                "API_TOKENS": f"bench-reader={reader_env},bench-probe={probe_env},"
                              f"bench-live=bench-live-{run}",
                "LOOP_BLOCK_LOG_SECONDS": "0.1"}
    env = {f"STREAM_APP_{k}": v for k, v in child_settings.items()}
    store = CounterStore.from_settings(settings)
    worker = StreamAppProcess(["worker"], workdir / "worker.log", env)
    reader = StreamAppProcess(["reader"], workdir / "reader.log", env)
    try:
        figures.worker = await worker_run(worker, port, store, traffic, progress)
        stats_url = f"http://127.0.0.1:{reader_port}/api/v1/callback-agents/stats"
        await populate_year(store, reader_env)
        figures.reader = await reader_load(stats_url, "bench-reader", config.reader_clients,
                                           config.reader_seconds, progress)
        figures.reader_uncached = await reader_load(stats_url, "bench-reader",
                                                    config.reader_clients,
                                                    config.reader_seconds, progress, 2000)
        figures.reader_new_connection = await reader_load(
            stats_url, "bench-reader", config.reader_clients, config.reader_seconds, progress,
            new_connection=True)
        if config.live_streams:
            figures.live = await live_streams(f"{stats_url}/live", "bench-live", store,
                                              f"bench-live-{run}", reader.pid,
                                              config.live_streams, config.live_seconds,
                                              config.background_rate, progress)
        # Right after the workload, while its pending callbacks come due by the thousand:
        # the probes show whether any step holds the worker's loop (the worst lag).
        figures.end_to_end = await end_to_end(bootstrap, topics, stats_url, "bench-probe",
                                              probe_env, config, progress)
        figures.end_to_end_replay = await end_to_end(bootstrap, topics, stats_url,
                                                     "bench-probe", probe_env, config,
                                                     progress, replay=traffic)
        figures.end_to_end["worst_loop_lag_ms"] = 1000 * await metric_value(
            port, "callback_stats_event_loop_lag_max_seconds")
        figures.end_to_end["worst_loop_lag_busy_ms"] = 1000 * await metric_value(
            port, "callback_stats_event_loop_lag_busy_max_seconds")
        figures.end_to_end["worst_gc_pause_ms"] = 1000 * await metric_value(
            port, "callback_stats_gc_pause_max_seconds")
        figures.loop_blocks = loop_blocks((workdir / "worker.log").read_text(errors="replace"))
        worker, figures.restart = await restart(worker, store, bootstrap, topics, probe_env,
                                                workdir / "worker", progress)
        worker.stop()
        figures.scale_out = await scale_out(env, store, config, workdir, progress)
        if config.state_contacts:
            figures.state = await large_state(env, store, config, workdir, progress)
        if config.failover_contacts:
            figures.failover = await failover(env, store, config, workdir, progress)
    finally:
        worker.stop()
        reader.stop()
        await store.close()
        progress.end()
    shutil.rmtree(workdir, ignore_errors=True)  # kept, with the logs, if anything failed
    ratios(figures)
    return figures
