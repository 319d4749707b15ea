"""The pure domain against brute-force oracles, over random histories and orders."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from stream_app.matching import (
    UNMATCHED,
    CallRecord,
    CallTime,
    Decision,
    OutboundRef,
    day_bucket,
    decide,
    remember,
)

W = 100.0
refs = st.lists(st.tuples(st.integers(0, 400).map(float), st.sampled_from("abcd")),
                max_size=20).map(
    lambda rows: [OutboundRef(t, agent, f"c{i}") for i, (t, agent) in enumerate(rows)])


def oracle(t: float, sources: frozenset[str] | None, history: list[OutboundRef]) -> Decision:
    ok = sorted((r.t, r.call_id, r.agent_id) for r in history
                if t - W <= r.t <= t and (sources is None or r.agent_id in sources))
    return Decision(ok[-1][2], ok[-1][1]) if ok else UNMATCHED


@given(st.integers(0, 400).map(float), st.none() | st.frozensets(st.sampled_from("abcd")),
       refs)
def test_decide_matches_the_oracle_in_any_order(t: float, sources: frozenset[str] | None,
                                                history: list[OutboundRef]) -> None:
    assert decide(t, sources, history, W) == oracle(t, sources, history)
    assert decide(t, sources, list(reversed(history)), W) == oracle(t, sources, history)


def test_window_edges() -> None:
    at_edge = [OutboundRef(0.0, "a", "c1")]
    assert decide(W, None, at_edge, W) == Decision("a", "c1")
    assert decide(W + 1, None, at_edge, W) == UNMATCHED
    assert decide(-1.0, None, at_edge, W) == UNMATCHED  # an outbound after the callback


def test_latest_source_wins_and_non_sources_are_ignored() -> None:
    history = [OutboundRef(10.0, "a", "c1"), OutboundRef(20.0, "b", "c2"),
               OutboundRef(30.0, "x", "c3")]
    assert decide(50.0, frozenset("ab"), history, W) == Decision("b", "c2")
    assert decide(50.0, None, history, W) == Decision("x", "c3")


calls = st.dictionaries(st.sampled_from([f"c{i}" for i in range(12)]),
                        st.tuples(st.integers(0, 400).map(float), st.sampled_from("abcd")),
                        min_size=1)


@given(calls, st.data(), st.integers(0, 200).map(float))
def test_remember_keeps_exactly_the_calls_within_retention(known, data, retention) -> None:
    """Whatever the arrival order and duplicates, the history is every distinct call
    no older than the newest minus the retention."""
    order = data.draw(st.lists(st.sampled_from(sorted(known)), min_size=1, max_size=40))
    history: list[OutboundRef] = []
    for call_id in order:
        t, agent = known[call_id]
        history = remember(history, OutboundRef(t, agent, call_id), retention)
    seen = {c: OutboundRef(known[c][0], known[c][1], c) for c in order}
    newest = max(r.t for r in seen.values())
    expected = sorted((r for r in seen.values() if r.t >= newest - retention),
                      key=lambda r: (r.t, r.call_id))
    assert history == expected


kinds = st.sampled_from(["received", "answered"])
call_events = st.lists(st.tuples(kinds, st.integers(0, 10**6).map(float)), min_size=1,
                       max_size=8)


@given(call_events, st.randoms())
def test_call_record_is_order_independent_and_counts_once(events, rnd) -> None:
    def fold(seq):
        record = CallRecord.first(*seq[0])
        for kind, t in seq[1:]:
            record = record.seen(kind, t)
        return record

    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, b = fold(events), fold(shuffled + shuffled)
    assert a == b
    received = [t for k, t in events if k == "received"]
    assert a.time.t == (min(received) if received else min(t for _, t in events))
    assert a.answered == any(k == "answered" for k, _ in events)


def test_first_decision_is_final() -> None:
    record = CallRecord(CallTime(1.0, 1.0), False).classified(Decision("a", "c"))
    assert record.classified(UNMATCHED).decision == Decision("a", "c")


def test_day_bucket_follows_the_time_zone() -> None:
    t = 1704077999.0  # 2024-01-01T02:59:59Z
    assert day_bucket(t, ZoneInfo("UTC")) == "2024-01-01"
    assert day_bucket(t, ZoneInfo("America/Sao_Paulo")) == "2023-12-31"
    assert day_bucket(t + 1, ZoneInfo("America/Sao_Paulo")) == "2024-01-01"
