"""One log format for every line of a process: the package's and the libraries' (Faust,
mode, aiokafka, redis-py, aiohttp).

Every command configures the root logger once through :func:`configure`, and the worker
keeps Faust from installing handlers of its own (``override_logging=False``), so there is
one handler and one formatter:

- ``text``: ``[time] [pid] [LEVEL] logger: message``, one line per record;
- ``json`` (``STREAM_APP_LOG_FORMAT=json``): one JSON object per line with ``time`` (UTC,
  ISO 8601), ``level``, ``logger``, ``message``, and the fields a record carries in
  ``extra`` (``topic``, ``partition``, ``offset``, ``environment`` …), formatted by
  python-json-logger.

:class:`Tidy` makes the libraries' records fit that: mode's service prefix
(``[^--Producer]: …``) becomes a ``service`` field, terminal escape codes go, and a
message that is an ASCII table (Faust's recovery progress) keeps its first line and says
how many table lines it left out. :class:`Transient` lowers to WARNING the library
ERRORs of a broker that is briefly away, which the worker rides out (a failed
coordinator lookup on a fresh cluster, a refused connection, a failed fetch): ERROR is
for what an operator must act on. The repeats of those are summarised
(``logsummary``), and the worker's own lines say when an outage starts and ends.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import IO, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SERVICE_PREFIX = re.compile(r"^\[\^[-=]*(?P<service>.+?)\]:\s")
TABLE_LINE = re.compile(r"^\s*[┌├└│+|].*$")

TRANSIENT = frozenset({
    "Group Coordinator Request failed: %s",
    "FindCoordinator Request failed: %s",
    "Unable connect to node with id %s: %s",
    'Unable connect to "%s:%s": %s',
    "Unable to update metadata from %s",
    "Topic %s not found in cluster metadata",
    "Failed fetch messages from %s: %s",
    "Failed fetch offsets from %s: %s",
    "Heartbeat send request failed: %s. Will retry.",
    "Heartbeat session expired - marking coordinator dead",
    "OffsetCommit failed before join, ignoring: %s",
    "Error sending %s to node %s [%s] -- marking coordinator dead",
    "Unexpected exception in AIOKafkaConnection",
})
"""aiokafka's ERROR templates for a broker away or a coordinator moving: each is retried
by the client, so each is a WARNING here (the worker's readiness and its own outage lines
say whether it lasts)."""


class Tidy(logging.Filter):
    """Library records made plain: no escape codes, no tables, the service as a field."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = ESCAPES.sub("", record.getMessage())
        match = SERVICE_PREFIX.match(message)
        if match:
            record.service = match["service"].strip()
            message = message[match.end():]
        record.msg, record.args = _without_tables(message), None
        return True


def _without_tables(message: str) -> str:
    lines = message.splitlines()
    kept = [line for line in lines if not TABLE_LINE.match(line)]
    dropped = len(lines) - len(kept)
    text = "\n".join(kept).strip()
    return f"{text} ({dropped} table lines left out)" if dropped else text


class Transient(logging.Filter):
    """aiokafka's ERRORs about a broker briefly away, lowered to WARNING; and asyncio's
    reports of an aiokafka connection dropped without being closed (after a broker died:
    a leak inside aiokafka, nothing for an operator to do)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and (
                (record.name.startswith("aiokafka") and str(record.msg) in TRANSIENT)
                or (record.name == "asyncio" and "AIOKafkaConnection" in str(record.msg))):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def at(topic: str, partition: int, offset: int | None = None) -> dict[str, object]:
    """The ``extra`` of a record about one place in a topic: fields of the JSON line."""
    fields: dict[str, object] = {"topic": topic, "partition": partition}
    if offset is not None:
        fields["offset"] = offset
    return fields


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter("{levelname}{name}{message}", style="{", timestamp="time",
                             rename_fields={"levelname": "level", "name": "logger"},
                             json_ensure_ascii=False)
    return logging.Formatter(TEXT_FORMAT)


def configure(level: int | str = logging.INFO, log_format: LogFormat = "text",
              summary: logging.Filter | None = None,
              stream: IO[str] | None = None) -> logging.Handler:
    """Make one handler the root logger's only one. Called again (the settings are read
    after the arguments), it replaces the handler, so a process never writes two formats.

    The filters run in order: :class:`Transient` sets the level the ``summary`` (the
    worker's ``logsummary.RepeatSummary``) sees, and the summary must see the message
    template before :class:`Tidy` replaces it with the formatted text."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    for step in (Transient(), summary, Tidy()):
        if step is not None:
            handler.addFilter(step)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
