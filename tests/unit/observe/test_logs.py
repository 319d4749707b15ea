"""One log format for every line: text or JSON, library records made plain, the ERRORs
of a broker briefly away lowered to WARNING, repeats still summarised."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from stream_app.observe import logs
from stream_app.observe.logsummary import RepeatSummary
from tests.support import ManualClock


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_lines_carry_time_level_logger_message_and_the_records_fields(
        restore_root: None) -> None:
    out = io.StringIO()
    logs.configure("INFO", "json", stream=out)
    logging.getLogger("stream_app.worker.holes").warning(
        "%s[%d] stands still", "outbound", 3,
        extra={"topic": "outbound", "partition": 3, "offset": 17})
    logging.getLogger("faust.transport").info("[^--Producer]: Creating topic\x1b[0m")
    first, second = (json.loads(line) for line in lines_of(out))
    assert first["level"] == "WARNING" and first["logger"] == "stream_app.worker.holes"
    assert first["message"] == "outbound[3] stands still"
    assert (first["topic"], first["partition"], first["offset"]) == ("outbound", 3, 17)
    assert first["time"].startswith("20") and "T" in first["time"]
    assert (second["message"], second["service"]) == ("Creating topic", "Producer")
    logging.getLogger("faust.agents.agent").info("[^---Agent: stream_app.wor[.]intake]: Go")
    third = json.loads(lines_of(out)[2])
    assert (third["message"], third["service"]) == ("Go", "Agent: stream_app.wor[.]intake")


def test_text_is_one_line_per_record_with_level_and_logger(restore_root: None) -> None:
    out = io.StringIO()
    logs.configure("INFO", "text", stream=out)
    logging.getLogger("stream_app.x").info("hello %s", "there")
    (line,) = lines_of(out)
    assert line.endswith("[INFO] stream_app.x: hello there")


def test_configured_twice_a_process_still_writes_one_format(restore_root: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure("INFO", "text", stream=first)
    logs.configure("INFO", "json", stream=second)
    logging.getLogger("stream_app.x").warning("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["message"] == "once"


def test_tables_and_escape_codes_stay_out_of_the_log() -> None:
    record = logging.LogRecord(
        "faust.tables.recovery", logging.INFO, __file__, 1,
        "[^---Recovery]: \x1b[1mHighwater for active changelog partitions:\n"
        "┌Highwater - Active─┐\n│ topic │ partition │\n└───────┴───────────┘", None, None)
    logs.Tidy().filter(record)
    assert record.getMessage() == ("Highwater for active changelog partitions: "
                                   "(3 table lines left out)")
    assert record.service == "Recovery"


@pytest.mark.parametrize(("name", "template", "lowered"), [
    ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: %s", True),
    ("aiokafka", "Unable connect to node with id %s: %s", True),
    ("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s", True),
    ("aiokafka.consumer.group_coordinator", "Unexpected error from SyncGroup: %s", False),
    ("stream_app.core.store.counters", "Unable connect to node with id %s: %s", False),
    ("asyncio", "Unclosed AIOKafkaConnection\nconn: %s", True),
    ("asyncio", "Task was destroyed but it is pending!\ntask: %s", False),
])
def test_a_broker_briefly_away_is_a_warning_what_needs_an_operator_stays_an_error(
        name: str, template: str, lowered: bool) -> None:
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, template, ("a", "b"), None)
    logs.Transient().filter(record)
    assert record.levelname == ("WARNING" if lowered else "ERROR")


def test_repeats_are_summarised_by_template_before_the_text_is_formatted(
        restore_root: None) -> None:
    out = io.StringIO()
    summary = RepeatSummary(interval=10.0, clock=ManualClock())
    logs.configure("INFO", "text", summary=summary, stream=out)
    for node in range(5):
        logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", node, "x")
    (line,) = lines_of(out)
    assert "[WARNING] aiokafka: Unable connect to node with id 0: x" in line
