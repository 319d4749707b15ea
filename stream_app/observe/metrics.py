"""Prometheus metrics of the worker (served at the worker's ``/metrics``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("callback_stats_events_consumed_total",
                          "Input messages consumed, by topic.", ["topic"])
DEAD_LETTERS = Counter("callback_stats_dead_letters_total",
                       "Input messages sent to the dead-letter topic, by reason.",
                       ["topic", "reason"])
INTERNAL_ERRORS = Counter("callback_stats_internal_errors_total",
                          "Messages dead-lettered after an unexpected error, by topic.",
                          ["topic"])
OUTCOMES = Counter("callback_stats_outcomes_total",
                   "Callbacks newly counted, by outcome (matched, unmatched, answered).",
                   ["outcome"])
LATE_CALLBACKS = Counter("callback_stats_late_callbacks_total",
                         "Callbacks older than the join state still covers (classified with "
                         "what is kept, flagged late).")
PENDING = Gauge("callback_stats_pending_callbacks",
                "Callbacks waiting out the grace period on this worker.")
OUTAGE_RETRIES = Counter("callback_stats_outage_retries_total",
                         "Effects retried because a service was unavailable, by service "
                         "(kafka, redis).", ["service"])
CONSUMER_LAG = Gauge("callback_stats_consumer_lag",
                     "Messages not yet committed, by input topic (end offset - committed).",
                     ["topic"])
PARTITION_LAG = Gauge("callback_stats_consumer_partition_lag",
                      "Messages not yet committed, by input partition (end offset - committed).",
                      ["topic", "partition"])
RECORD_AGE = Gauge("callback_stats_input_record_age_seconds",
                   "Wall clock minus the Kafka timestamp of the last record consumed, by input "
                   "partition: the lag in seconds while behind, the end-to-end latency once "
                   "caught up.", ["topic", "partition"])
OUTAGE_SECONDS = Gauge("callback_stats_outage_seconds",
                       "How long a service (kafka, redis) has been unavailable to the effects "
                       "being retried; 0 while it answers.", ["service"])
STALLED = Gauge("callback_stats_stalled_seconds",
                "How long input has waited with no message processed and no offset committed "
                "(0 while the worker makes progress or nothing waits).")
METADATA_SYNC_RESTARTS = Counter(
    "callback_stats_kafka_metadata_sync_restarts_total",
    "aiokafka metadata synchronizers found dead and started again (worker/metadata_sync.py).",
    ["client"])
TIMER_FAILURES = Counter("callback_stats_timer_failures_total",
                         "Timer runs that failed (retried at their next tick), by timer.",
                         ["timer"])
STALE_STORES = Counter("callback_stats_stale_stores_wiped_total",
                       "Local table stores found ahead of their changelog, wiped and "
                       "recovered from it, by table.", ["table"])
LOOP_LAG = Histogram("callback_stats_event_loop_lag_seconds",
                     "How late the event loop ran a callback due now: the time one step of "
                     "work held the loop.",
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
LOOP_LAG_BUSY_WORST = Gauge(
    "callback_stats_event_loop_lag_busy_max_seconds",
    "Of the worst loop lags, the longest the loop thread was on the CPU meanwhile: the "
    "part a step of ours held it (the rest: the thread was not scheduled).")
LOOP_LAG_WORST = Gauge("callback_stats_event_loop_lag_max_seconds",
                       "The worst event loop lag seen since the worker started.")
GC_PAUSE_WORST = Gauge("callback_stats_gc_pause_max_seconds",
                       "The longest pause of Python's garbage collector since the worker "
                       "started (the loop stands still meanwhile).")
GC_PAUSE_TOTAL = Gauge("callback_stats_gc_pause_seconds_total",
                       "Time spent in Python's garbage collector since the worker started.")
ASSIGNED = Gauge("callback_stats_assigned_partitions",
                 "Partitions this worker consumes now, by topic.", ["topic"])


def observe_assignment(assigned: Any) -> None:
    """Refresh the assignment gauge from the consumer's assignment (read at scrape time);
    a topic this worker no longer has a partition of shows 0."""
    counts = dict.fromkeys(_ASSIGNED_TOPICS, 0)
    for tp in assigned:
        counts[tp.topic] = counts.get(tp.topic, 0) + 1
    for topic, count in counts.items():
        ASSIGNED.labels(topic).set(count)
    _ASSIGNED_TOPICS.update(counts)


_ASSIGNED_TOPICS: set[str] = set()


def observe_lag(end_offsets: Mapping[Any, int], committed: Mapping[Any, int]) -> None:
    """Refresh the lag gauge from Faust's monitor (read at scrape time)."""
    lag: dict[str, int] = {}
    for tp, end in end_offsets.items():
        behind = max(0, end - committed.get(tp, 0))
        lag[tp.topic] = lag.get(tp.topic, 0) + behind
        PARTITION_LAG.labels(tp.topic, str(tp.partition)).set(behind)
    for topic, value in lag.items():
        CONSUMER_LAG.labels(topic).set(value)


_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, cached: what the hot path counts per record (prometheus
    ``labels()`` builds and checks its key each call, ~1 µs)."""
    key = (metric, labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


_AGES: dict[tuple[str, int], Any] = {}


def observe_record_age(topic: str, partition: int, timestamp: float, now: float) -> None:
    """Set the record-age gauge of one input partition (its child cached: this runs for
    every input record)."""
    child = _AGES.get((topic, partition))
    if child is None:
        child = _AGES[topic, partition] = RECORD_AGE.labels(topic, str(partition))
    child.set(max(0.0, now - timestamp))
