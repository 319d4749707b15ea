"""The ``stream-app`` command: worker, reader, stats, explain, simulate, services, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from stream_app import __version__
from stream_app.arguments import OneLineErrors, at_least_zero, fraction, level, positive
from stream_app.core.published import TOPICS
from stream_app.observe import logs
from stream_app.ports import refuse_busy
from stream_app.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logs.configure(getattr(args, "loglevel", "WARNING"))
    args.run(args)


def _load(args: argparse.Namespace) -> Settings:
    """The settings, read once; the log lines from here on take their format."""
    settings = load_settings()
    logs.configure(getattr(args, "loglevel", "WARNING"), settings.log_format)
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="stream-app", description=__doc__,
        epilog="Configuration comes from STREAM_APP_* environment variables, read once at "
               "start (a bad value is one line naming the variable); `stream-app settings` "
               "prints every one with its effective value and where it came from.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run the stream processor")
    worker.add_argument("--loglevel", default="INFO", type=level, metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL, any case "
                             "(default INFO)")
    worker.set_defaults(run=_worker)

    reader = commands.add_parser("reader", help="run the HTTP stats reader")
    reader.add_argument("--loglevel", default="INFO", type=level, metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL, any case "
                             "(default INFO)")
    reader.add_argument("--access-log", action="store_true",
                        help="log every request (off by default; /metrics counts them)")
    reader.set_defaults(run=_reader)

    stats = commands.add_parser("stats", help="print an environment's stats")
    stats.add_argument("--environment", required=True)
    stats.add_argument("--start", help="YYYY-MM-DD (default: today - 30 days)")
    stats.add_argument("--end", help="YYYY-MM-DD (default: today)")
    stats.add_argument("--callback-agent", default=None,
                       help="only the calls routed to this callback agent")
    stats.add_argument("--json", action="store_true", help="print the HTTP body instead")
    stats.set_defaults(run=_stats)

    why = commands.add_parser("explain", help="why one callback counted as it did")
    why.add_argument("call_id")
    why.add_argument("--environment", required=True)
    why.add_argument("--json", action="store_true", help="print the HTTP body instead")
    why.set_defaults(run=_explain)

    sim = commands.add_parser("simulate", help="produce realistic traffic to Kafka")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--day", type=date.fromisoformat, default=None,
                     help="the simulated day (default: today in STREAM_APP_TIMEZONE)")
    sim.add_argument("--environments", type=positive, default=2)
    sim.add_argument("--callbacks", type=positive, default=2000, help="callbacks in the day")
    sim.add_argument("--contacts", type=positive, default=500,
                     help="contacts per environment")
    sim.add_argument("--outbound-agents", type=positive, default=4)
    for name, default in (("match", 0.7), ("answer", 0.75), ("duplicate", 0.05),
                          ("out-of-order", 0.05), ("bad", 0.01)):
        sim.add_argument(f"--{name}-rate", type=fraction, default=default,
                         help=f"a share from 0 to 1 (default {default})")
    sim.add_argument("--rate", type=at_least_zero(float), default=2000.0,
                     help="messages per second (0: max)")
    sim.add_argument("--backfill", type=at_least_zero(int), default=0, metavar="DAYS",
                     help="a history of DAYS days ending with --day, emitted in shuffled order "
                          "(a replay); default: one day in event-time order")
    sim.add_argument("--truth", type=Path, help="write the expected stats here (JSON)")
    sim.set_defaults(run=_simulate)

    follow = commands.add_parser(
        "tail", help="print a published topic's records as JSON lines",
        description="Print the records of a published topic, one JSON value per line, as "
                    "they arrive (read_committed, outside any consumer group: it moves no "
                    "subscriber's position). Ctrl-C stops it.")
    follow.add_argument("topic", choices=TOPICS,
                        help="the topic by its contract name (the STREAM_APP_TOPIC_* "
                             "settings say what it is called here)")
    follow.add_argument("--environment", default=None,
                        help="only this environment's records (default: all)")
    follow.add_argument("--from-beginning", action="store_true",
                        help="start at the topic's first record (default: only new ones)")
    follow.add_argument("--until-end", action="store_true",
                        help="stop at the end of the topic as it was at the start")
    follow.add_argument("--max", type=positive, default=None, metavar="N",
                        help="stop after N records")
    follow.set_defaults(run=_tail)

    shown = commands.add_parser(
        "settings", help="print every STREAM_APP_* setting: value and where it came from",
        description="Every setting as a worker or reader started here would read it: the "
                    "variable, its effective value (secrets masked) and its source "
                    "(environment or default).")
    shown.add_argument("--json", action="store_true", help="one JSON object per setting")
    shown.add_argument("--example", action="store_true",
                       help="print an env file of every setting with its default and "
                            "description instead (config/stream-app.env)")
    shown.set_defaults(run=_settings)

    aud = commands.add_parser("audit", help="check that every committed input offset was "
                                            "forwarded or dead-lettered")
    aud.add_argument("--json", action="store_true", help="print the report as JSON")
    aud.set_defaults(run=_audit)

    mig = commands.add_parser("migrate-layout", help="copy counters written before the "
                                                     "Redis Cluster layout to their new keys")
    mig.add_argument("--from-url", default=None,
                     help="the Redis holding the old keys (default STREAM_APP_REDIS_URL; "
                          "one server: the old layout never ran on a cluster)")
    mig.add_argument("--delete-old", action="store_true",
                     help="delete the old keys once every one was copied")
    mig.set_defaults(run=_migrate_layout)

    svc = commands.add_parser("services", help="local Kafka (KRaft) and Redis without Docker")
    svc.add_argument("action", choices=["up", "down", "status"])
    svc.add_argument("--kafka-port", type=int, default=None,
                     help="Kafka's port (default 9092); with --kafka-brokers N, the first "
                          "broker's, the others on every second port after it")
    svc.add_argument("--redis-port", type=int, default=None,
                     help="Redis's port (default 6379); with --redis-cluster, the first "
                          "node's, the other five on the next ports")
    svc.add_argument("--kafka-brokers", type=int, default=1, choices=range(1, 10),
                     metavar="N", help="a Kafka cluster of N KRaft nodes (default 1)")
    svc.add_argument("--redis-cluster", action="store_true",
                     help="a Redis Cluster of 3 masters and 3 replicas instead of one Redis")
    svc.set_defaults(run=_services)

    bench = commands.add_parser("bench", help="performance figures, side by side, on one "
                                              "seeded workload (needs Kafka and Redis)")
    from stream_app.dev.bench.config import BenchConfig  # dataclasses only, no Faust

    for name, default in asdict(BenchConfig()).items():
        bench.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                           help=f"default {default:g}")
    bench.add_argument("--json", type=Path, help="also write the figures here")
    bench.set_defaults(run=_bench)

    demo = commands.add_parser("demo", help="everything end to end on this machine")
    demo.add_argument("--callbacks", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=_demo)
    return parser


def _worker(args: argparse.Namespace) -> None:
    from stream_app.worker.run import run_worker

    settings = _load(args)
    refuse_busy(settings.worker_web_bind, settings.worker_web_port,
                "STREAM_APP_WORKER_WEB_PORT")
    run_worker(settings, loglevel=args.loglevel)


def _reader(args: argparse.Namespace) -> None:
    from stream_app.api.reader import run_reader

    settings = _load(args)
    if not settings.tokens:
        sys.exit("error: STREAM_APP_API_TOKENS is empty: every request would answer 401; "
                 "set it to token=environment pairs (token1=env1,token2=env2)")
    refuse_busy(settings.reader_bind, settings.reader_port, "STREAM_APP_READER_PORT")
    run_reader(settings, access_log=args.access_log)


def _stats(args: argparse.Namespace) -> None:
    from stream_app.api.responses import ApiError
    from stream_app.report import UnknownEnvironment, print_stats, read_stats

    settings = _load(args)
    try:
        response = _redis_or_exit(settings, read_stats(settings, args.environment, args.start,
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
    from stream_app.report import print_call, read_call

    settings = _load(args)
    response = _redis_or_exit(settings, read_call(settings, args.environment, args.call_id))
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



T = TypeVar("T")


def _redis_or_exit(settings: Settings, question: Coroutine[Any, Any, T]) -> T:
    """The answer, or one line and exit 1 when Redis is away (the HTTP API's 503)."""
    from stream_app.core.counters import redis_outage

    try:
        return asyncio.run(question)
    except Exception as exc:
        if redis_outage(exc) is None:
            raise
        sys.exit(f"error: Redis at {settings.redis_url} did not answer "
                 f"({type(exc).__name__}); is it up? (STREAM_APP_REDIS_URL)")


def _tail(args: argparse.Namespace) -> None:
    from stream_app.core.tail import TailError, tail

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
    from stream_app.core.audit import audit

    report = asyncio.run(audit(_load(args)))
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

    from stream_app.core.counters import CounterStore
    from stream_app.core.layout_migration import migrate

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
    from stream_app.dev.bench.report import report, write_json
    from stream_app.dev.bench.run import run_bench
    from stream_app.dev.processes import ChildDied

    config = BenchConfig(**{name: getattr(args, name) for name in asdict(BenchConfig())})
    try:
        figures = asyncio.run(run_bench(config, _load(args)))
    except ChildDied as exc:
        sys.exit(f"error: {exc}")
    print(report(figures))
    if args.json:
        write_json(figures, args.json)


def _demo(args: argparse.Namespace) -> None:
    from stream_app.dev.demo import run_demo

    sys.exit(run_demo(callbacks=args.callbacks, seed=args.seed))
