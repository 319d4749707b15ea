"""A subscriber of ``callback-outcomes``: matched callbacks per source agent, per day.

A starting point for a service that builds on the derived topics. It shows what every
subscriber must do:

- read ``read_committed`` (only records of committed transactions count);
- check each record against the schema its ``schema-id`` header names (fetched once from
  the reader's ``/schemas``, or taken from the installed ``callback-stats`` package);
- drop duplicates by ``id``: in the default at-least-once mode a worker that crashes
  between publishing and committing publishes the same record again (same id, same
  content). Here the seen ids live in memory; a real service keeps them with its state,
  in the same transaction as what it derives from them.

Run it: ``python examples/subscriber.py --bootstrap localhost:9092 --until-end``; it
prints, per environment and day, the matched count of each source agent, the unmatched
and answered counts, and how many duplicates it dropped (without ``--until-end`` it
follows the topic and prints that report as a line whenever it has caught up). Needs
``aiokafka`` and ``jsonschema``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.request
from collections import Counter, defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from jsonschema import Draft202012Validator


def load_schemas(reader: str | None) -> dict[str, Draft202012Validator]:
    """schema id -> validator, from the reader (``--reader``) or the installed package."""
    if reader:
        with urllib.request.urlopen(f"{reader}/schemas", timeout=10) as listing:
            entries = json.load(listing)["schemas"]
        documents = {}
        for entry in entries:
            with urllib.request.urlopen(f"{reader}{entry['url']}", timeout=10) as answer:
                documents[entry["id"]] = json.load(answer)
    else:
        from stream_app.core.domain.published import SCHEMAS, schema_document

        documents = {str(s): schema_document(s) for s in SCHEMAS}
    return {name: Draft202012Validator(doc) for name, doc in documents.items()}


class MatchedBySource:
    """What this subscriber derives: per (environment, day), matched calls per source
    agent, unmatched and answered calls; each outcome id counted once."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.duplicates = 0
        self.matched: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.unmatched: Counter[tuple[str, str]] = Counter()
        self.answered: Counter[tuple[str, str]] = Counter()

    def add(self, record: dict[str, Any]) -> None:
        if record["id"] in self.seen:
            self.duplicates += 1
            return
        self.seen.add(record["id"])
        day = (record["environment_id"], record["day"])
        if record["kind"] == "answered":
            self.answered[day] += 1
        elif record["outcome"] == "matched":
            self.matched[day][record["source_agent_id"]] += 1
        else:
            self.unmatched[day] += 1

    def report(self) -> dict[str, Any]:
        days = sorted({*self.matched, *self.unmatched, *self.answered})
        out: dict[str, Any] = {"duplicates_dropped": self.duplicates, "days": {}}
        for env, day in days:
            out["days"].setdefault(env, {})[day] = {
                "matched_by_source_agent": dict(sorted(self.matched[(env, day)].items())),
                "unmatched": self.unmatched[(env, day)],
                "answered": self.answered[(env, day)]}
        return out


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not described["partitions"]:
        sys.exit(f"no topic {topic} (has a worker run?)")
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def consume(args: argparse.Namespace) -> dict[str, Any]:
    validators = load_schemas(args.reader)
    state = MatchedBySource()
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group,
                                enable_auto_commit=args.group is not None,
                                auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    try:
        tps = await partitions_of(args.bootstrap, args.topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps) if args.until_end else None
        shown = None
        while ends is None or any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    headers = dict(message.headers or ())
                    schema = headers.get("schema-id", b"").decode()
                    record = json.loads(message.value)
                    if schema not in validators:
                        sys.exit(f"record {message.offset} names no known schema ({schema!r})")
                    validators[schema].validate(record)
                    state.add(record)
            if not batch and ends is None and state.report() != shown:
                shown = state.report()  # caught up: say where it stands
                print(json.dumps(shown), flush=True)
    finally:
        await consumer.stop()
    return state.report()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--topic", default="callback-outcomes")
    parser.add_argument("--reader", default=None,
                        help="the stats reader's base URL, for its /schemas (default: the "
                             "schemas of the installed callback-stats package)")
    parser.add_argument("--group", default=None, help="a consumer group (default: none)")
    parser.add_argument("--until-end", action="store_true",
                        help="stop at the topic's end as of the start, print the report")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(consume(args)), indent=2))


if __name__ == "__main__":
    main()
