"""The seeded workload: fresh topics, the traffic, probe callbacks."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date

from stream_app.dev.bench.config import BenchConfig
from stream_app.dev.simulate import Kind, Scenario, Traffic, generate


@dataclass
class Topics:
    outbound: str
    inbound: str
    config: str

    def as_kinds(self) -> dict[Kind, str]:
        return {"outbound": self.outbound, "inbound": self.inbound, "config": self.config}

    @classmethod
    def of_run(cls, run: str) -> Topics:
        return cls(f"bench-outbound-{run}", f"bench-inbound-{run}", f"bench-config-{run}")


def app_env(run: str, topics: Topics, partitions: int) -> dict[str, str]:
    """A worker app of the run's own: its group, internal topics and output topics."""
    return {"STREAM_APP_APP_ID": f"bench-{run}", "STREAM_APP_PARTITIONS": str(partitions),
            "STREAM_APP_TOPIC_OUTBOUND": topics.outbound,
            "STREAM_APP_TOPIC_INBOUND": topics.inbound, "STREAM_APP_TOPIC_CONFIG": topics.config,
            "STREAM_APP_TOPIC_OUTCOMES": f"bench-outcomes-{run}",
            "STREAM_APP_TOPIC_DLQ": f"bench-dlq-{run}"}


async def create_topics(bootstrap: str, topics: Topics, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=t, num_partitions=partitions,
                                            replication_factor=1)
                                   for t in topics.as_kinds().values()])
        names = set(topics.as_kinds().values())
        while not names <= set(await admin.list_topics()):
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def fresh_app(base_env: dict[str, str], name: str, partitions: int
                    ) -> tuple[str, Topics, dict[str, str]]:
    """A run name, its input topics (created), and a worker environment of its own."""
    run = f"{name}-{uuid.uuid4().hex[:8]}"
    topics = Topics.of_run(run)
    await create_topics(base_env["STREAM_APP_KAFKA_BOOTSTRAP"], topics, partitions)
    return run, topics, {**base_env, **app_env(run, topics, partitions)}


def workload(config: BenchConfig, prefix: str) -> Traffic:
    """About ``config.events`` messages: the simulator sends ≈ 3.9 per callback."""
    return generate(Scenario(seed=config.seed, environments=config.environments,
                             callbacks=max(10, int(config.events / 3.9)),
                             contacts=config.contacts, environment_prefix=prefix))


# -- 1. plain aiokafka ----------------------------------------------------------------

def probe_event(env: str, number: int, one_contact: bool = False) -> dict[str, str]:
    """A ``received`` callback of a call of its own, today (UTC); of a contact of its own
    too, or (``one_contact``) of the one contact every such probe shares."""
    phone = "+15550000000" if one_contact else f"+1555{number:07d}"
    return {"event_id": f"probe-{number}", "environment_id": env, "call_id": f"probe-{number}",
            "type": "received", "callback_agent_id": "probe", "contact_phone": phone,
            "occurred_at": f"{date.today().isoformat()}T12:00:00Z"}


# -- 6. restart with the state ---------------------------------------------------------------
