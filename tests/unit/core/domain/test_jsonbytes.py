"""Held records are right-sized: the same bytes as orjson's, without its 4 KiB buffer."""

from __future__ import annotations

import tracemalloc

import orjson

from stream_app.core.domain import jsonbytes

RECORD = {"id": "5b0e0f0e-1c1e-5b9e-9a3e-0e0e0e0e0e0e", "kind": "classified",
          "environment_id": "env-1", "call_id": "call-1", "outcome": "matched"}


def held(encode: object, n: int = 500) -> float:
    """Bytes of memory per encoded record while ``n`` are held."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode(RECORD) for _ in range(n)]  # type: ignore[operator]
        return (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()


def test_the_bytes_are_orjson_s_in_an_object_of_their_size() -> None:
    assert jsonbytes.dumps(RECORD) == orjson.dumps(RECORD)
    assert jsonbytes.dumps(RECORD, orjson.OPT_SORT_KEYS) \
        == orjson.dumps(RECORD, option=orjson.OPT_SORT_KEYS)
    size = len(orjson.dumps(RECORD))
    assert held(jsonbytes.dumps) < 2 * size + 100, "a record costs about its size"
