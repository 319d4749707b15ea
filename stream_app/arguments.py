"""The ``stream-app`` command line: its parser (every command, option, default and
choice, with help), the argument types, and usage errors in one line naming the command
and its ``--help``, never argparse's whole usage or a traceback. What each command does
is in ``cli.py``."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from stream_app import __version__
from stream_app.core.domain.published import TOPICS

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


_BENCH_HELP = {"code": "run the worker and the reader from the source tree at this path "
                       "(an A/B against another commit: git worktree add DIR REV)"}


def level(text: str) -> str:
    if text.upper() not in LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LEVELS)}")
    return text.upper()


def positive(text: str) -> int:
    value: int = number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive count")
    return value


def fraction(text: str) -> float:
    value: float = number(float, text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share from 0 to 1")
    return value


def at_least_zero(kind: type[Any]) -> Any:
    def parse(text: str) -> Any:
        value = number(kind, text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} is negative")
        return value
    parse.__name__ = kind.__name__
    return parse


def number(kind: type[Any], text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


class OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line naming the command and ``--help`` (argparse prints the
    whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    """Every command, option, default and choice of ``stream-app`` (``--help`` shows
    them all); the command's name lands in ``args.command``."""
    top = OneLineErrors(
        prog="stream-app",
        description="callback-stats: exact, real-time callback statistics from Kafka call "
                    "events. `stream-app worker` processes the streams, `stream-app reader` "
                    "serves the HTTP API; the other commands ask, simulate, check and run "
                    "local services. `stream-app COMMAND --help` for each one.",
        epilog="Configuration comes from STREAM_APP_* environment variables, read once at "
               "start (a bad value is one line naming the variable); `stream-app settings` "
               "prints every one with its effective value and where it came from.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(dest="command", required=True)

    worker = commands.add_parser(
        "worker", help="run the stream processor",
        description="Consume the input topics, join them per (environment, contact) and keep "
                    "the daily counters in Redis; publish outcomes, stats and dead letters. "
                    "Any number of workers share one consumer group. Serves /healthz, "
                    "/readyz and /metrics on STREAM_APP_WORKER_WEB_PORT.")
    _loglevel(worker)

    reader = commands.add_parser(
        "reader", help="run the HTTP stats reader",
        description="Serve the stats API, the live streams, explain and the operator page "
                    "on STREAM_APP_READER_PORT, from Redis. Stateless: run any number. "
                    "Refuses to start without STREAM_APP_API_TOKENS.")
    _loglevel(reader)
    reader.add_argument("--access-log", action="store_true",
                        help="log every request (off by default; /metrics counts them)")

    stats = commands.add_parser(
        "stats", help="print an environment's stats",
        description="The numbers the HTTP API answers, on the terminal, read from Redis.")
    stats.add_argument("--environment", required=True, help="the environment (tenant) id")
    stats.add_argument("--start", help="YYYY-MM-DD (default: today - 30 days)")
    stats.add_argument("--end", help="YYYY-MM-DD (default: today)")
    stats.add_argument("--callback-agent", default=None,
                       help="only the calls routed to this callback agent")
    stats.add_argument("--json", action="store_true", help="print the HTTP body instead")

    why = commands.add_parser(
        "explain", help="why one callback counted as it did",
        description="One callback's day, answer, callback agent and decision (the source "
                    "agent and outbound call that earned it, or unmatched), from Redis.")
    why.add_argument("call_id", help="the inbound call's call_id")
    why.add_argument("--environment", required=True, help="the environment (tenant) id")
    why.add_argument("--json", action="store_true", help="print the HTTP body instead")

    sim = commands.add_parser(
        "simulate", help="produce realistic traffic to Kafka",
        description="A seeded day of outbound calls, callbacks and callback roles (with "
                    "duplicates, stragglers and bad input) for the environments env-1 … "
                    "env-N, produced to the input topics; --truth writes what the stats "
                    "must then be.")
    sim.add_argument("--seed", type=int, default=7, help="the random seed (default 7)")
    sim.add_argument("--day", type=date.fromisoformat, default=None,
                     help="the simulated day (default: today in STREAM_APP_TIMEZONE)")
    sim.add_argument("--environments", type=positive, default=2,
                     help="how many environments, env-1 … env-N (default 2)")
    sim.add_argument("--callbacks", type=positive, default=2000,
                     help="callbacks in the day (default 2000)")
    sim.add_argument("--contacts", type=positive, default=500,
                     help="contacts per environment (default 500)")
    sim.add_argument("--outbound-agents", type=positive, default=4,
                     help="outbound agents per environment (default 4)")
    for name, default in (("match", 0.7), ("answer", 0.75), ("duplicate", 0.05),
                          ("out-of-order", 0.05), ("bad", 0.01)):
        sim.add_argument(f"--{name}-rate", type=fraction, default=default,
                         help=f"a share from 0 to 1 (default {default})")
    sim.add_argument("--rate", type=at_least_zero(float), default=2000.0,
                     help="messages per second, 0: as fast as possible (default 2000)")
    sim.add_argument("--backfill", type=at_least_zero(int), default=0, metavar="DAYS",
                     help="a history of DAYS days ending with --day, emitted in shuffled order "
                          "(a replay); default: one day in event-time order")
    sim.add_argument("--truth", type=Path, help="write the expected stats here (JSON)")

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

    shown = commands.add_parser(
        "settings", help="print every STREAM_APP_* setting: value and where it came from",
        description="Every setting as a worker or reader started here would read it: the "
                    "variable, its effective value (secrets masked) and its source "
                    "(environment or default).")
    shown.add_argument("--json", action="store_true", help="one JSON object per setting")
    shown.add_argument("--example", action="store_true",
                       help="print an env file of every setting with its default and "
                            "description instead (config/stream-app.env)")

    aud = commands.add_parser(
        "audit", help="check that every committed input offset was forwarded or "
                      "dead-lettered",
        description="Read the input topics up to the group's committed offsets, and the "
                    "keyed and dead-letter topics; list every committed input offset that "
                    "was neither forwarded, dead-lettered nor applied (config). Exit 1 if "
                    "any.")
    aud.add_argument("--json", action="store_true", help="print the report as JSON")

    mig = commands.add_parser(
        "migrate-layout", help="copy counters written before the Redis Cluster layout to "
                               "their new keys",
        description="Copy the counters of the layout before one hash tag per environment "
                    "to their new keys (the worker and reader read the new keys only).")
    mig.add_argument("--from-url", default=None,
                     help="the Redis holding the old keys (default STREAM_APP_REDIS_URL; "
                          "one server: the old layout never ran on a cluster)")
    mig.add_argument("--delete-old", action="store_true",
                     help="delete the old keys once every one was copied")

    svc = commands.add_parser(
        "services", help="local Kafka (KRaft) and Redis without Docker",
        description="Apache Kafka from the official jars (Maven Central, cached in the "
                    "user's cache directory) and Debian's redis-server (installed with apt "
                    "when missing), run as processes of their own; configs in "
                    "stream_app.config (config/ in a checkout).")
    svc.add_argument("action", choices=["up", "down", "status"],
                     help="up: start what does not answer yet; down: stop what up started; "
                          "status: what answers")
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

    bench = commands.add_parser(
        "bench", help="performance figures, side by side, on one seeded workload (needs "
                      "Kafka and Redis)",
        description="The worker and the reader against baselines measured in the same run "
                    "(plain aiokafka, bare Faust): CPU per event, throughput, memory, "
                    "latency; see docs/benchmarks.md.")
    from stream_app.dev.bench.config import BenchConfig  # dataclasses only, no Faust

    for name, default in asdict(BenchConfig()).items():
        if default is None:
            bench.add_argument(f"--{name.replace('_', '-')}", help=_BENCH_HELP[name])
            continue
        bench.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                           help=f"default {default:g}")
    bench.add_argument("--json", type=Path, help="also write the figures here")

    demo = commands.add_parser(
        "demo", help="everything end to end on this machine",
        description="Start Kafka and Redis if needed, a worker and a reader, produce a "
                    "simulated day for two fresh environments, and compare the HTTP stats "
                    "with the simulator's truth. Exit 0 when they match.")
    demo.add_argument("--callbacks", type=positive, default=2000,
                      help="callbacks in the simulated day (default 2000)")
    demo.add_argument("--seed", type=int, default=7, help="the random seed (default 7)")
    return top


def _loglevel(command: argparse.ArgumentParser) -> None:
    """The ``--loglevel`` of the long-running commands (worker, reader)."""
    command.add_argument("--loglevel", default="INFO", type=level, metavar="LEVEL",
                         help="DEBUG, INFO, WARNING, ERROR or CRITICAL, any case "
                              "(default INFO)")
