"""Every STREAM_APP_* setting, validated once at start-up and passed down.

Nothing else in the package reads the environment: a process calls
:func:`load_settings` once and hands the frozen :class:`Settings` to whatever needs
it, so a bad value is caught before any connection is opened.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_state_dir
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.loops import EventLoop
from stream_app.observe.logs import LogFormat

ENV_PREFIX = "STREAM_APP_"


def _topic(default: str, what: str) -> str:
    return Field(default, min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$",
                 description=f"Kafka topic for {what}.")


class Settings(BaseSettings):
    """The process configuration; field ``x`` is read from ``STREAM_APP_X``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    kafka_bootstrap: str = Field("localhost:9092", min_length=1,
                                 description="Kafka bootstrap servers, host:port[,host:port].")
    redis_url: str = Field("redis://localhost:6379/0", pattern=r"^(redis|rediss|unix)://",
                           description="Redis URL holding the counters (with "
                                       "REDIS_CLUSTER: any node of the cluster).")
    redis_cluster: bool = Field(False, description="Talk to a Redis Cluster (redis-py's "
                                "RedisCluster) instead of one Redis server.")
    redis_min_replicas: int = Field(0, ge=0, le=16,
                                    description="Redis replicas a batch's writes must reach "
                                                "(WAIT) before its Kafka offsets are "
                                                "committed; 0: the master's answer is enough.")
    recency_window_seconds: int = Field(604_800, gt=0,
                                        description="W: how far back an outbound call explains "
                                                    "a callback.")
    match_grace_seconds: float = Field(30.0, ge=0,
                                       description="G: a callback is classified with the records "
                                                   "whose Kafka timestamps are at most G after "
                                                   "its first record's.")
    timestamp_disorder_seconds: float = Field(5.0, ge=0,
                                              description="How far out of order record timestamps "
                                                          "within one input partition may be.")
    allowed_lateness_seconds: int = Field(2_592_000, ge=0,
                                          description="How far behind the newest callback of a "
                                                      "partition a callback may be and still be "
                                                      "joined exactly (event time).")
    store: str = Field("rocksdb://", pattern=r"^(rocksdb|memory)://$",
                       description="Faust table store: rocksdb:// (on disk under DATA_DIR; "
                                   "a restart recovers only the changelog tail) or memory:// "
                                   "(tables rebuilt from their changelogs on assignment).")
    rocksdb_memory_mib: int = Field(8, ge=1, le=4096,
                                    description="RocksDB memory per table partition (each "
                                                "is a RocksDB of its own): its write "
                                                "buffers (two at most) and its block cache, "
                                                "each this size; Faust's defaults are 64 MiB "
                                                "buffers (three) and a 2 GiB cache.")
    stall_seconds: float = Field(120.0, gt=0,
                                 description="Liveness: /healthz fails once input has waited "
                                             "this long with no message processed and no "
                                             "offset committed (a supervisor restarts the "
                                             "worker).")
    loop_block_log_seconds: float = Field(0.25, gt=0,
                                          description="The worker logs the stack of any step "
                                                      "holding its event loop this long.")
    log_format: LogFormat = Field("text", description="Log lines of every command: text (one "
                                  "line each: time, pid, level, logger, message) or json (one "
                                  "object per line: time, level, logger, message and the "
                                  "record's fields, e.g. topic, partition, offset).")
    event_loop: EventLoop = Field("uvloop", description="Event loop of the worker and the "
                                  "reader: uvloop (faster) or asyncio (the standard one).")
    dedup_ttl_seconds: int = Field(3_888_000, gt=0,
                                   description="How long per-call markers live in Redis (must "
                                               "exceed W + lateness).")
    timezone: str = Field("UTC", description="IANA time zone of the day buckets.")
    api_tokens: SecretStr = Field(SecretStr(""),
                                  description="token1=environment1,token2=environment2")
    reader_port: int = Field(8080, ge=1, le=65535, description="HTTP port of the stats reader.")
    reader_bind: str = Field("127.0.0.1", description="Address the stats reader binds.")
    worker_web_port: int = Field(6066, ge=1, le=65535,
                                 description="HTTP port of the worker's /metrics and /healthz.")
    app_id: str = Field("callback-stats", min_length=1, pattern=r"^[A-Za-z0-9._-]+$",
                        description="Faust app id: consumer group and internal topic prefix.")
    partitions: int = Field(8, ge=1, le=1024,
                            description="Partitions of the topics this app creates.")
    replication_factor: int = Field(1, ge=1, le=32,
                                    description="Replication factor of the topics this app "
                                                "creates.")
    standby_replicas: int = Field(0, ge=0, le=8,
                                  description="Faust standby replicas of each table "
                                              "partition: a worker taking over a partition "
                                              "it kept a standby of recovers only the "
                                              "changelog's tail.")
    session_timeout_seconds: float = Field(
        10.0, ge=6.0, le=300.0,
        description="Kafka consumer-group session timeout: a worker that died without "
                    "leaving (SIGKILL, a lost machine) keeps its partitions this long "
                    "before the group gives them to the others. Shorter means faster "
                    "failover and more rebalances from a long pause (GC, a frozen VM). "
                    "At least 6: brokers refuse shorter sessions by default "
                    "(group.min.session.timeout.ms).")
    worker_web_bind: str = Field("127.0.0.1",
                                 description="Address the worker's /metrics server binds.")
    data_dir: str = Field(default_factory=lambda: default_data_dir(),
                          description="Faust's local data directory (created with its parents); "
                                      "default: the user's state directory, so the worker runs "
                                      "from any working directory.")
    topic_outbound: str = _topic("outbound-calls", "outbound calls")
    topic_inbound: str = _topic("inbound-callbacks", "inbound callback lifecycle events")
    topic_config: str = _topic("callback-agent-config", "callback agent configuration")
    topic_outcomes: str = _topic("callback-outcomes", "published callback outcomes")
    topic_dlq: str = _topic("callback-events-dlq", "rejected input")
    topic_stats: str = _topic("callback-stats",
                              "published counters per environment and day (compacted)")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("api_tokens")
    @classmethod
    def _parse_tokens(cls, value: SecretStr) -> SecretStr:
        parse_tokens(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _dedup_outlives_window(self) -> Settings:
        floor = self.recency_window_seconds + self.allowed_lateness_seconds
        if self.dedup_ttl_seconds <= floor:
            raise ValueError(f"STREAM_APP_DEDUP_TTL_SECONDS must exceed "
                             f"STREAM_APP_RECENCY_WINDOW_SECONDS + "
                             f"STREAM_APP_ALLOWED_LATENESS_SECONDS ({floor})")
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def tokens(self) -> dict[str, str]:
        """token -> environment id. Never log this."""
        return parse_tokens(self.api_tokens.get_secret_value())


def default_data_dir() -> str:
    """``$XDG_STATE_HOME/stream-app/worker-data`` (``~/.local/state/...`` by default)."""
    return str(Path(user_state_dir("stream-app")) / "worker-data")


def parse_tokens(raw: str) -> dict[str, str]:
    """Parse ``token=env,token=env``; the error never echoes a token."""
    tokens: dict[str, str] = {}
    for position, item in enumerate(filter(None, (p.strip() for p in raw.split(","))), 1):
        token, sep, env = (s.strip() for s in item.partition("="))
        if not sep or not token or not env:
            raise ValueError(f"entry #{position} is not token=environment")
        if token in tokens:
            raise ValueError(f"entry #{position} repeats a token")
        tokens[token] = env
    return tokens


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad value exits with one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        sys.exit(f"error: {describe_error(exc)}")


def describe_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = first.get("loc") or ()
    name = f"{ENV_PREFIX}{str(loc[0]).upper()}" if loc else "settings"
    message = first.get("msg", "invalid value")
    return f"{name}: {message}"


def _without_password(value: str) -> str:
    """A URL's password masked (``redis://:secret@host`` → ``redis://:********@host``)."""
    parts = urlsplit(value)
    if not parts.scheme or not parts.password:
        return value
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Effective(NamedTuple):
    """One setting as a process would read it now (``stream-app settings``)."""

    variable: str
    value: str
    """Secrets masked."""
    source: str
    """``environment`` or ``default``."""
    description: str


def effective(settings: Settings, environ: Mapping[str, str]) -> list[Effective]:
    """Every setting: its variable, its value (secrets masked) and where it came from."""
    rows = []
    for name, field in Settings.model_fields.items():
        variable = f"{ENV_PREFIX}{name.upper()}"
        value = getattr(settings, name)
        shown = ("********" if value.get_secret_value() else "") \
            if isinstance(value, SecretStr) else _without_password(str(value))
        rows.append(Effective(variable, shown,
                              "environment" if variable in environ else "default",
                              field.description or ""))
    return rows


def example_file() -> str:
    """Every setting with its description and default, as an env file (``config/
    stream-app.env`` is this text; ``stream-app settings --example`` prints it)."""
    lines = ["# Every STREAM_APP_* setting of callback-stats with its default; copy, edit,",
             "# and hand it to the worker and the reader as their environment (systemd's",
             "# EnvironmentFile, compose's env_file). Generated: stream-app settings --example",
             ""]
    for name, field in Settings.model_fields.items():
        default = field.default
        value = default.get_secret_value() if isinstance(default, SecretStr) else default
        text = str(value).lower() if isinstance(value, bool) else str(value)
        variable = f"{ENV_PREFIX}{name.upper()}"
        lines += [f"# {line}" for line in textwrap.wrap(field.description or "", 86)]
        # A default computed per user (the data directory): shown, left unset.
        lines += [f"# {variable}=" if field.default_factory else f"{variable}={text}", ""]
    return "\n".join(lines)
