"""The bench names the steps that held the worker's loop, from the worker's log."""

from __future__ import annotations

import traceback

from stream_app.dev.bench.measure import loop_blocks


def _held_here() -> str:
    return "".join(traceback.format_stack())


def test_each_logged_block_is_named_by_its_innermost_frames() -> None:
    stack = _held_here()
    log = (f"[2026-12-01 02:00:00,000] [1] [INFO] started\n"
           f"[2026-12-01 02:00:01,000] [1] [WARNING] event loop held for 0.31 s so far, "
           f"by:\n{stack}"
           f"[2026-12-01 02:00:02,000] [1] [INFO] next line\n"
           f"[2026-12-01 02:00:03,000] [1] [WARNING] event loop held for 1.20 s so far, "
           f"by:\n{stack}")
    blocks = loop_blocks(log, frames=2)
    assert len(blocks) == 2
    assert blocks[0].startswith("0.31 s: test_measure.py:")
    assert " _held_here < test_measure.py:" in blocks[0]
    assert blocks[0].endswith("test_each_logged_block_is_named_by_its_innermost_frames")
    assert blocks[1].startswith("1.20 s: ")


def test_a_log_without_blocks_names_none() -> None:
    assert loop_blocks("[x] [1] [WARNING] something else\n  File \"a.py\", line 1, in f\n") == []
