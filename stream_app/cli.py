"""The ``stream-app`` command: worker, reader, stats, explain, simulate, services, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

import orjson

from stream_app.arguments import parser
from stream_app.observe import logs, tracing
from stream_app.ports import refuse_busy
from stream_app.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(getattr(args, "loglevel", "WARNING"))
    COMMANDS[args.command](args)


def _load(args: argparse.Namespace) -> Settings:
    """The settings, read once; the log lines from here on take their format."""
    settings = load_settings()
    logs.configure(getattr(args, "loglevel", "WARNING"), settings.log_format)
    return settings


def _worker(args: argparse.Namespace) -> None:
    from stream_app.worker.run import run_worker

    settings = _load(args)
    refuse_busy(settings.worker_web_bind, settings.worker_web_port,
                "STREAM_APP_WORKER_WEB_PORT")
    _tracing("callback-stats-worker")
    run_worker(settings, loglevel=args.loglevel)


def _reader(args: argparse.Namespace) -> None:
    from stream_app.api.reader import run_reader

    settings = _load(args)
    if not settings.tokens:
        sys.exit("error: STREAM_APP_API_TOKENS is empty: every request would answer 401; "
                 "set it to token=environment pairs (token1=env1,token2=env2)")
    refuse_busy(settings.reader_bind, settings.reader_port, "STREAM_APP_READER_PORT")
    _tracing("callback-stats-reader")
    run_reader(settings, access_log=args.access_log)


def _stats(args: argparse.Namespace) -> None:
    from stream_app.api.responses import ApiError
    from stream_app.terminal import UnknownEnvironment, print_stats, read_stats

    settings = _load(args)
    try:
        response = _answer_or_exit(settings, read_stats(settings, args.environment, args.start,
                                                       args.end, args.callback_agent))
    except ApiError as exc:
        sys.exit(f"error: {exc.code}: {exc.message}")
    except UnknownEnvironment as exc:
        sys.exit(f"error: {exc}")
    if args.json:
        print(orjson.dumps(response.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
    else:
        print_stats(args.environment, response, callback_agent_id=args.callback_agent)


def _explain(args: argparse.Namespace) -> None:
    from stream_app.terminal import print_call, read_call

    settings = _load(args)
    response = _answer_or_exit(settings, read_call(settings, args.environment, args.call_id))
    if response is None:
        sys.exit(f"error: NOT_FOUND: no callback {args.call_id!r} in {args.environment} "
                 "(unknown, or its record expired after STREAM_APP_DEDUP_TTL_SECONDS)")
    if args.json:
        print(orjson.dumps(response.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
    else:
        print_call(response)


def _simulate(args: argparse.Namespace) -> None:
    from stream_app.dev.simulate import Scenario, produce_scenario

    settings = _load(args)
    scenario = Scenario(
        seed=args.seed, day=args.day or datetime.now(settings.zone).date(),
        timezone=settings.timezone, environments=args.environments, callbacks=args.callbacks,
        contacts=args.contacts, outbound_agents=args.outbound_agents,
        match_rate=args.match_rate, answer_rate=args.answer_rate,
        duplicate_rate=args.duplicate_rate, out_of_order_rate=args.out_of_order_rate,
        bad_rate=args.bad_rate, window_seconds=settings.recency_window_seconds,
        days=max(1, args.backfill), shuffle=args.backfill > 0)
    truth = produce_scenario(settings, scenario, args.rate or None)
    if args.truth:
        args.truth.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
        print(f"truth written to {args.truth}")



def _tracing(service: str) -> None:
    """Spans on if the OTEL_* variables ask for an exporter; a bad one is one line."""
    try:
        tracing.configure(service)
    except ValueError as exc:
        sys.exit(f"error: {exc}")


T = TypeVar("T")


def _answer_or_exit(settings: Settings, question: Coroutine[Any, Any, T]) -> T:
    """The answer, or one line and exit 1 when Kafka or Redis is away (the HTTP API's
    503; ``core/outages.py`` decides what is an outage)."""
    from stream_app.core.outages import outage_of

    try:
        return asyncio.run(question)
    except Exception as exc:
        service = outage_of(exc)
        if service is None:
            raise
        where = (f"Redis at {settings.redis_url}", "STREAM_APP_REDIS_URL") \
            if service == "redis" else \
            (f"Kafka at {settings.kafka_bootstrap}", "STREAM_APP_KAFKA_BOOTSTRAP")
        sys.exit(f"error: {where[0]} did not answer ({type(exc).__name__}); is it up? "
                 f"({where[1]})")


def _tail(args: argparse.Namespace) -> None:
    from stream_app.core.ops.tail import TailError, tail

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the one line below says it
    try:
        asyncio.run(tail(_load(args), args.topic, sys.stdout, environment=args.environment,
                         from_beginning=args.from_beginning, until_end=args.until_end,
                         limit=args.max))
    except TailError as exc:
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        pass


def _settings(args: argparse.Namespace) -> None:
    import os

    from stream_app.settings import effective, example_file

    if args.example:
        print(example_file(), end="")
        return
    rows = effective(_load(args), os.environ)
    if args.json:
        for row in rows:
            print(orjson.dumps(row._asdict()).decode())
        return
    width = max(len(row.variable) for row in rows)
    for row in rows:
        print(f"{row.variable:<{width}}  {row.value or '(empty)'}  [{row.source}]")


def _audit(args: argparse.Namespace) -> None:
    from stream_app.core.ops.audit import audit

    settings = _load(args)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the one line below says it
    report = _answer_or_exit(settings, audit(settings))
    if args.json:
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        for t in report.topics:
            print(f"{t.topic}: {t.committed} committed offsets, {t.forwarded} forwarded, "
                  f"{t.dead_lettered} dead-lettered, {t.applied} applied, "
                  f"{len(t.missing)} missing")
            for line in t.as_dict()["missing_ranges"][:50]:
                print(f"  missing {line}")
    sys.exit(1 if report.missing else 0)


def _migrate_layout(args: argparse.Namespace) -> None:
    from redis.asyncio import Redis

    from stream_app.core.store.counters import CounterStore
    from stream_app.core.store.migration import migrate

    settings = _load(args)

    async def run() -> int:
        source = Redis.from_url(args.from_url or settings.redis_url)
        async with CounterStore.from_settings(settings) as store:
            try:
                done = await migrate(source, store.redis, args.delete_old)
            finally:
                await source.aclose()
        print(f"copied {done.copied} keys to the new layout, deleted {done.deleted} old keys")
        for key in done.already_there[:20]:
            print(f"  already in the new layout (old key kept): {key}")
        if done.already_there:
            print(f"{len(done.already_there)} keys were already in the new layout: a new "
                  f"worker ran before the migration; their old keys are kept")
            return 1
        return 0

    sys.exit(asyncio.run(run()))


def _services(args: argparse.Namespace) -> None:
    from stream_app.dev import clusters, services

    layout = services.Layout.default(args.kafka_port or 9092, args.redis_port or 6379)
    kafka = clusters.KafkaCluster(layout, args.kafka_brokers) if args.kafka_brokers > 1 else None
    redis = clusters.RedisCluster(layout) if args.redis_cluster else None
    # down/status: the services an option names (``down --redis-cluster`` leaves Kafka
    # alone); none named: every node of ours, whatever its port.
    named = [n for n, given in (("kafka", args.kafka_port is not None or kafka),
                                ("redis", args.redis_port is not None or redis)) if given]
    try:
        if args.action == "up":
            result = {"redis": clusters.redis_up(redis) if redis else
                      services.start(layout, "redis"),
                      "kafka": clusters.kafka_up(kafka) if kafka else
                      services.start(layout, "kafka")}
        elif not named:
            result = getattr(services, args.action)(layout, everything=True)
        else:
            single = [n for n in named if not {"kafka": kafka, "redis": redis}[n]]
            result = {**getattr(services, args.action)(layout, only=single),
                      **getattr(clusters, args.action)(kafka if "kafka" in named else None,
                                                       redis if "redis" in named else None)}
    except services.ServiceError as exc:
        sys.exit(f"error: {exc}")
    for name, state in result.items():
        print(f"{name}: {state}")


def _bench(args: argparse.Namespace) -> None:
    from stream_app.dev.bench.config import BenchConfig
    from stream_app.dev.bench.run import BenchError, run_bench
    from stream_app.dev.bench.summary import report, write_json
    from stream_app.dev.processes import ChildDied

    config = BenchConfig(**{name: getattr(args, name) for name in asdict(BenchConfig())})
    json_file = args.json.resolve() if args.json else None  # --code changes directory
    try:
        figures = asyncio.run(run_bench(config, _load(args)))
    except (ChildDied, BenchError) as exc:
        sys.exit(f"error: {exc}")
    print(report(figures))
    if json_file:
        write_json(figures, json_file)


def _demo(args: argparse.Namespace) -> None:
    from stream_app.dev.demo import run_demo

    sys.exit(run_demo(callbacks=args.callbacks, seed=args.seed))


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "worker": _worker,
    "reader": _reader,
    "stats": _stats,
    "explain": _explain,
    "simulate": _simulate,
    "tail": _tail,
    "settings": _settings,
    "audit": _audit,
    "migrate-layout": _migrate_layout,
    "services": _services,
    "bench": _bench,
    "demo": _demo,
}
"""What each command of :func:`arguments.parser` runs."""
