"""Builds the Faust app, its topics and tables from the settings; nothing else.

Data flow (each arrow is a Kafka topic or a table):

    outbound-calls / inbound-callbacks --intake: validate, dead-letter--> {app}-by-contact
        keyed by (environment, phone) --contacts: join, count--> history / pending tables
        --progress records (watermarks) pass a callback's cutoff: decide--> Redis counters
        + callback-outcomes
    callback-agent-config --intake--> Redis (newest updated_at wins)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.types import TableT

from stream_app.core.kafka.topics import TopicNames, bootstrap_servers
from stream_app.settings import Settings
from stream_app.worker.monitor import SlimMonitor


@dataclass(frozen=True)
class Wiring:
    """The app and the channels and tables the agents use."""

    app: faust.App
    names: TopicNames
    outbound: faust.TopicT
    inbound: faust.TopicT
    config: faust.TopicT
    keyed: faust.TopicT
    history: TableT[bytes, Any]
    pending: TableT[bytes, Any]


def state_dir(settings: Settings, cluster_id: str) -> Path:
    """Where this worker's local table stores live: under the data directory, in a
    directory naming the Kafka cluster and the app, so a worker pointed at another
    cluster (or run as another app) never opens a foreign store."""
    return Path(settings.data_dir) / f"kafka-{cluster_id}" / settings.app_id


def app_options(settings: Settings, directory: Path) -> dict[str, Any]:
    """Faust's settings for this worker, each one that differs from Faust's default
    explained."""
    return dict(
        broker=";".join(f"kafka://{server}" for server in bootstrap_servers(settings)),
        store=settings.store,
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # On shutdown, don't wait for in-flight messages to be acked: they are not
        # committed, so the next owner replays them (every effect is idempotent).
        stream_wait_empty=False,
        producer_linger=0.005,
        producer_max_batch_size=262_144,
        web_enabled=True,
        web_port=settings.worker_web_port,
        web_bind=settings.worker_web_bind,
        datadir=str(directory),
        topic_disable_leader=True,
        # A worker killed with SIGKILL holds its partitions until its session expires;
        # keep that short so a restarted or surviving worker takes over quickly.
        broker_session_timeout=settings.session_timeout_seconds,
        Monitor=SlimMonitor,
        broker_heartbeat_interval=min(2.0, settings.session_timeout_seconds / 3),
        # Partitions added to an input topic are found at the next metadata refresh
        # (then the group rebalances); the default is 5 minutes. Until they report
        # progress the join decides nothing (core/domain/progress.py Watermarks.expect).
        consumer_metadata_max_age_ms=30_000,
    )


def store_options(settings: Settings) -> dict[str, Any]:
    """RocksDB's memory per table partition (a fresh dict each time: Faust's store pops
    keys from it). Every partition of every table is a RocksDB of its own, and Faust's
    defaults give each 64 MiB write buffers (three at most) and a 2 GiB block cache, so
    a worker's memory had no bound but the state's size. Smaller buffers flush sooner;
    the rows are on disk and in the changelog either way."""
    if not settings.store.startswith("rocksdb"):
        return {}
    size = settings.rocksdb_memory_mib * 2**20
    return {"write_buffer_size": size, "max_write_buffer_number": 2,
            "block_cache_size": size}


def create_app(settings: Settings, cluster_id: str) -> Wiring:
    names = TopicNames.from_settings(settings)
    directory = state_dir(settings, cluster_id)
    directory.mkdir(parents=True, exist_ok=True)
    app = faust.App(settings.app_id, **app_options(settings, directory))

    def source(name: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw")

    # Both joined sides share one keyed topic, so they are co-partitioned by construction.
    # The tables use the producer's partitioner on the same key *bytes* (``key_type=bytes``
    # is the raw serializer; a JSON-encoded key hashes to another partition), so a
    # contact's state sits on the changelog partition numbered like its keyed partition,
    # whatever event or timer writes it, and the worker that reads its records is the one
    # that recovered its state (tables.KeyedPartitions; tests/integration/test_crash).
    keyed = app.topic(names.keyed, key_serializer="raw", value_serializer="raw",
                      partitions=settings.partitions, internal=True)
    history = app.Table("history", partitions=settings.partitions, key_type=bytes,
                        use_partitioner=True, options=store_options(settings))
    pending = app.Table("pending", partitions=settings.partitions, key_type=bytes,
                        use_partitioner=True, options=store_options(settings))
    return Wiring(app=app, names=names, outbound=source(names.outbound),
                  inbound=source(names.inbound), config=source(names.config), keyed=keyed,
                  history=history, pending=pending)

