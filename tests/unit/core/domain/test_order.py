"""Each partition is processed in offset order, every offset once, whatever Faust delivers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.domain.order import (
    GAP_REFETCH_SECONDS,
    GAP_REFETCHES,
    AbsentOffsets,
    GapRepairs,
    InOrder,
)


def from_bases(**bases: int | None) -> InOrder[str]:
    """An InOrder whose partitions' commit bases are ``bases`` (by partition name)."""
    return InOrder(bases.get)


def test_the_next_offset_is_processed_a_lower_one_only_acked_a_higher_one_waits() -> None:
    order = from_bases(p=10)
    assert order.admit(1, "p", 10) == "next"
    assert order.admit(1, "p", 11) == "next"
    assert order.admit(1, "p", 10) == "again", "fetched again: processed already"
    assert order.admit(1, "p", 13) == "gap", "12 is missing"
    assert order.expected("p") == 12
    assert order.admit(1, "p", 12) == "next"
    assert order.admit(1, "p", 13) == "next"


def test_a_partition_starts_at_its_commit_base_and_again_in_each_generation() -> None:
    order = from_bases(p=3, q=None)
    assert order.admit(1, "p", 5) == "gap", "the head of the partition is missing"
    assert order.expected("p") == 3
    assert order.admit(1, "p", 3) == "next"
    assert order.admit(1, "q", 0) == "gap", "no base yet: nothing is admitted"
    assert order.admit(2, "p", 4) == "gap", "a new generation starts at the base"
    assert order.admit(2, "p", 3) == "next"


def test_a_skipped_gap_and_a_forgotten_batch() -> None:
    order = from_bases(p=0)
    assert order.admit(1, "p", 0) == "next"
    order.skip_to("p", 5)
    assert order.admit(1, "p", 5) == "next"
    order.forget()
    assert order.admit(1, "p", 6) == "gap", "from the base again"


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=80),
       st.integers(min_value=0, max_value=5))
def test_whatever_arrives_what_is_processed_is_a_run_from_the_base(
        arrivals: list[int], base: int) -> None:
    order = from_bases(p=base)
    processed = [o for o in arrivals if order.admit(7, "p", o) == "next"]
    assert processed == list(range(base, base + len(processed)))


@given(st.integers(min_value=1, max_value=60), st.data())
def test_holes_are_fetched_again_until_every_offset_is_processed_once_in_order(
        end: int, data: st.DataObject) -> None:
    """A fetcher that loses random runs of messages (no more often than a gap is fetched
    again), a worker that re-fetches gaps that stay, and its timer, which seeks an idle
    partition back to its base: offsets 0..end-1 are processed, once each, in order."""
    order, repairs, clock = from_bases(p=0), GapRepairs(), 0.0
    position, losses, processed = 0, data.draw(st.integers(0, GAP_REFETCHES)), []
    while len(processed) < end:
        clock += 0.5
        if position == end:  # idle behind a hole: the timer seeks back to the base
            position = 0
            continue
        offset = position
        if losses and data.draw(st.booleans()):  # Faust delivers past a hole
            losses -= 1
            offset = data.draw(st.integers(position, end - 1))
        position = offset + 1
        verdict = order.admit(1, "p", offset)
        if verdict == "next":
            processed.append(offset)
        elif verdict == "gap":
            missing = order.expected("p")
            action = repairs.on_gap("p", missing, clock)
            assert action != "skip", "never past records that exist"
            if action == "ask":  # the broker holds them: the fetcher lost them
                assert missing is not None
                repairs.answered("p", missing, True)
            if action == "refetch":
                assert missing is not None
                position = missing
    assert processed == list(range(end))


def test_a_gap_is_waited_on_fetched_again_a_few_times_then_asked_about() -> None:
    repairs, step = GapRepairs(), GAP_REFETCH_SECONDS
    assert repairs.on_gap("p", 4, now=0.0) == "wait", "it may close by itself"
    assert repairs.on_gap("p", 4, now=0.5) == "wait"
    for attempt in range(1, GAP_REFETCHES + 1):
        assert repairs.on_gap("p", 4, now=attempt * step) == "refetch"
        assert repairs.on_gap("p", 4, now=attempt * step + 0.1) == "wait", "under way"
    now = (GAP_REFETCHES + 1) * step
    assert repairs.on_gap("p", 4, now=now) == "ask", "the broker is asked, not guessed at"
    assert repairs.on_gap("p", 4, now=now + step) == "wait", "while the answer is awaited"
    repairs.answered("p", 4, holds=None)
    assert repairs.on_gap("p", 4, now=now + 2 * step) == "ask", "no answer: ask again"
    repairs.answered("p", 4, holds=True)
    assert repairs.holding() == ["p"]
    assert repairs.on_gap("p", 4, now=now + 3 * step) == "refetch", "records exist: fetch"
    repairs.answered("p", 9, holds=False)
    assert repairs.on_gap("p", 4, now=now + 4 * step) == "refetch", "an answer about another gap"
    repairs.answered("p", 4, holds=False)
    assert repairs.on_gap("p", 4, now=now + 5 * step) == "skip", "only when the broker says so"
    assert repairs.on_gap("p", 9, now=100.0) == "wait", "another gap starts afresh"
    assert repairs.on_gap("q", 4, now=100 + step) == "wait", "per partition"
    assert repairs.on_gap("r", None, now=0.0) == "wait", "no base: the seek is to come"
    assert repairs.on_gap("r", None, now=100.0) == "wait"


# -- absent offsets: what a fetch read past without a record ------------------------------


def test_absent_offsets_are_what_a_fetch_read_past_without_a_record() -> None:
    absent = AbsentOffsets()
    absent.read(("t", 0), 0, 10, [0, 1, 5, 6])  # 2-4 and 7-9 absent
    assert absent.run_end(("t", 0), 2) == 5
    assert absent.run_end(("t", 0), 7) == 10
    assert absent.run_end(("t", 0), 5) == 5, "a record is not absent"
    assert absent.covers(("t", 0), 2, 5) and not absent.covers(("t", 0), 2, 6)
    assert absent.run_end(("t", 1), 2) == 2, "partitions are apart"
    absent.read(("t", 0), 10, 12, [])  # adjacent: merged
    assert absent.run_end(("t", 0), 7) == 12
    absent.forget_below(("t", 0), 6)
    assert absent.run_end(("t", 0), 2) == 2 and absent.run_end(("t", 0), 8) == 12


def test_only_watched_topics_are_recorded() -> None:
    absent = AbsentOffsets()
    absent.watch(["input"])
    absent.read(("changelog", 0), 0, 10, [])
    absent.read(("input", 0), 0, 10, [])
    assert absent.run_end(("changelog", 0), 0) == 0
    assert absent.run_end(("input", 0), 0) == 10


@given(st.sets(st.integers(0, 80)),
       st.lists(st.tuples(st.integers(0, 70), st.integers(0, 20)), max_size=12),
       st.integers(0, 90))
def test_run_end_matches_a_brute_force_oracle(records: set[int],
                                              reads: list[tuple[int, int]],
                                              probe: int) -> None:
    """Whatever the fetches of one log and their order (re-fetches overlap), the run of
    absent offsets from ``probe`` ends at the first offset no fetch read past empty."""
    absent, oracle = AbsentOffsets(), set()
    for start, length in reads:
        stop = start + length
        yielded = sorted(o for o in records if start <= o < stop)
        absent.read(("t", 0), start, stop, yielded)
        oracle |= set(range(start, stop)) - records
    end = probe
    while end in oracle:
        end += 1
    assert absent.run_end(("t", 0), probe) == end


def test_a_commit_past_a_tail_marker_moves_the_next_offset_along() -> None:
    """The commit ran over a transaction's commit marker the agents never saw: the next
    record after it is the next one, not a gap."""
    bases = {"p": 10}
    order = InOrder(bases.get)
    assert order.admit(1, "p", 10) == "next"
    bases["p"] = 12  # committed 10, then over the marker at 11
    assert order.admit(1, "p", 12) == "next"
    assert order.admit(1, "p", 14) == "gap", "past the commit base, a gap is a gap"
