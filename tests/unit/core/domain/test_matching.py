"""The pure domain against brute-force oracles, over random histories and orders."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.domain.matching import (
    UNMATCHED,
    CallTime,
    ConfigVersion,
    Decision,
    OutboundRef,
    day_bucket,
    decide,
    prune,
    remember,
    sources_at,
)
from tests.oracles import CallRecord

W = 100.0
refs = st.lists(st.tuples(st.integers(0, 400).map(float), st.integers(0, 50).map(float),
                          st.sampled_from("abcd")), max_size=20).map(
    lambda rows: [OutboundRef(t, ts, agent, f"c{i}") for i, (t, ts, agent) in enumerate(rows)])
INF = float("inf")


def oracle(t: float, cutoff: float, sources: frozenset[str] | None,
           history: list[OutboundRef]) -> Decision:
    ok = sorted((r.t, r.call_id, r.agent_id) for r in history
                if t - W <= r.t <= t and r.ts <= cutoff
                and (sources is None or r.agent_id in sources))
    return Decision(ok[-1][2], ok[-1][1]) if ok else UNMATCHED


@given(st.integers(0, 400).map(float), st.integers(0, 60).map(float),
       st.none() | st.frozensets(st.sampled_from("abcd")), refs)
def test_decide_matches_the_oracle_in_any_order(t: float, cutoff: float,
                                                sources: frozenset[str] | None,
                                                history: list[OutboundRef]) -> None:
    assert decide(t, cutoff, sources, history, W) == oracle(t, cutoff, sources, history)
    assert decide(t, cutoff, sources, list(reversed(history)), W) == \
        oracle(t, cutoff, sources, history)


def test_window_edges() -> None:
    at_edge = [OutboundRef(0.0, 0.0, "a", "c1")]
    assert decide(W, INF, None, at_edge, W) == Decision("a", "c1")
    assert decide(W + 1, INF, None, at_edge, W) == UNMATCHED
    assert decide(-1.0, INF, None, at_edge, W) == UNMATCHED  # an outbound after the callback


def test_an_outbound_record_after_the_cutoff_takes_no_part() -> None:
    history = [OutboundRef(10.0, 5.0, "a", "c1"), OutboundRef(20.0, 31.0, "b", "c2")]
    assert decide(50.0, 30.0, None, history, W) == Decision("a", "c1")
    assert decide(50.0, 31.0, None, history, W) == Decision("b", "c2")


def test_latest_source_wins_and_non_sources_are_ignored() -> None:
    history = [OutboundRef(10.0, 0.0, "a", "c1"), OutboundRef(20.0, 0.0, "b", "c2"),
               OutboundRef(30.0, 0.0, "x", "c3")]
    assert decide(50.0, INF, frozenset("ab"), history, W) == Decision("b", "c2")
    assert decide(50.0, INF, None, history, W) == Decision("x", "c3")


versions = st.lists(st.builds(ConfigVersion, st.integers(0, 5).map(float),
                              st.integers(0, 20).map(float),
                              st.none() | st.lists(st.sampled_from("abc"), max_size=3)
                              .map(tuple)), max_size=6)


@given(versions, st.integers(0, 25).map(float), st.randoms())
def test_sources_at_is_the_newest_version_published_by_the_cutoff(vs, cutoff, rnd) -> None:
    known = [v for v in vs if v.ts <= cutoff]
    expected = None
    if known:
        best = max(known, key=lambda v: (v.updated_at, v.source_agent_ids or ()))
        expected = frozenset(best.source_agent_ids) if best.source_agent_ids else None
    shuffled = list(vs)
    rnd.shuffle(shuffled)
    assert sources_at(shuffled, cutoff) == expected


calls = st.dictionaries(st.sampled_from([f"c{i}" for i in range(12)]),
                        st.tuples(st.integers(0, 400).map(float), st.sampled_from("abcd")),
                        min_size=1)


@given(calls, st.data(), st.integers(0, 400).map(float))
def test_remember_and_prune_keep_exactly_the_calls_past_the_horizon(known, data,
                                                                    horizon) -> None:
    """Whatever the arrival order and duplicates, the history is every distinct call
    (with its earliest record) no older than the horizon."""
    order = data.draw(st.lists(st.tuples(st.sampled_from(sorted(known)),
                                         st.integers(0, 9).map(float)), min_size=1,
                               max_size=40))
    history: list[OutboundRef] = []
    for call_id, ts in order:
        t, agent = known[call_id]
        history = prune(remember(history, OutboundRef(t, ts, agent, call_id)), horizon)
    earliest: dict[str, float] = {}
    for call_id, ts in order:
        earliest[call_id] = min(ts, earliest.get(call_id, ts))
    expected = sorted((OutboundRef(known[c][0], ts, known[c][1], c)
                       for c, ts in earliest.items() if known[c][0] >= horizon),
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
