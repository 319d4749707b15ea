"""The hot path's metric children are cached, and count where ``labels()`` would."""

from __future__ import annotations

from prometheus_client import REGISTRY

from stream_app.observe import metrics


def test_a_cached_child_is_the_labelled_one_and_counts_into_it() -> None:
    name = "callback_stats_events_consumed_total"
    before = REGISTRY.get_sample_value(name, {"topic": "t-child"}) or 0.0
    first = metrics.child(metrics.EVENTS_CONSUMED, "t-child")
    assert metrics.child(metrics.EVENTS_CONSUMED, "t-child") is first
    assert first is metrics.EVENTS_CONSUMED.labels("t-child")
    first.inc()
    assert REGISTRY.get_sample_value(name, {"topic": "t-child"}) == before + 1
    assert metrics.child(metrics.OUTCOMES, "t-child") is not first, "per metric"
