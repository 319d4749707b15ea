"""Prometheus metrics of the worker (served at the worker's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_CONSUMED = Counter("callback_stats_events_consumed_total",
                          "Input messages consumed, by topic.", ["topic"])
DEAD_LETTERS = Counter("callback_stats_dead_letters_total",
                       "Input messages sent to the dead-letter topic, by reason.",
                       ["topic", "reason"])
OUTCOMES = Counter("callback_stats_outcomes_total",
                   "Callbacks newly counted, by outcome (matched, unmatched, answered).",
                   ["outcome"])
PENDING = Gauge("callback_stats_pending_callbacks",
                "Callbacks waiting out the grace period on this worker.")
REDIS_RETRIES = Counter("callback_stats_redis_retries_total",
                        "Redis batches retried after an error.")
