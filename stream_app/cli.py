"""The ``stream-app`` command: worker, reader, stats, simulate, services, demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import services
from .settings import load_settings


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run the stream processor")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(run=_worker)

    svc = commands.add_parser("services", help="local Kafka (KRaft) and Redis without Docker")
    svc.add_argument("action", choices=["up", "down", "status"])
    svc.add_argument("--kafka-port", type=int, default=9092)
    svc.add_argument("--redis-port", type=int, default=6379)
    svc.set_defaults(run=_services)
    return parser


def _worker(args: argparse.Namespace) -> None:
    from .worker import run_worker

    run_worker(load_settings(), loglevel=args.loglevel)


def _services(args: argparse.Namespace) -> None:
    layout = services.Layout.default(args.kafka_port, args.redis_port)
    action = {"up": services.up, "down": services.down, "status": services.status}[args.action]
    try:
        result = action(layout)
    except services.ServiceError as exc:
        sys.exit(f"error: {exc}")
    for name, state in result.items():
        print(f"{name}: {state}")
