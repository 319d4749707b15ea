"""The loop lag probe measures a block and names the step that held the loop."""

from __future__ import annotations

import asyncio
import time

from stream_app.observe.looplag import LoopLag


def a_step_that_holds_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # no await: nothing else runs on the loop meanwhile


async def test_a_block_is_measured_and_its_stack_logged_once() -> None:
    lag = LoopLag(report_after=0.1)
    lag.start()
    try:
        await asyncio.sleep(0.1)
        a_step_that_holds_the_loop(0.4)
        await asyncio.sleep(0.2)
        assert lag.worst >= 0.3
        assert len(lag.reported) == 1, "one stack per block"
        assert "a_step_that_holds_the_loop" in lag.reported[0]
        await asyncio.sleep(0.3)
        assert len(lag.reported) == 1, "a loop that runs logs nothing"
    finally:
        assert lag._task is not None
        lag._task.cancel()


def spin(seconds: float) -> None:
    """Compute for ``seconds`` of this thread's CPU time (not wall time: on a loaded
    machine a wall-clock spin gets less CPU than it lasts, and the test measured that)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_a_lag_s_busy_part_is_the_loop_thread_s_cpu_time() -> None:
    """A step that computes is busy for its whole block; a thread that is merely not
    running (here: sleeping, as when the process is not scheduled) is not."""
    lag = LoopLag(report_after=10.0)
    lag.start()
    try:
        await asyncio.sleep(0.1)
        a_step_that_holds_the_loop(0.3)
        await asyncio.sleep(0.1)
        assert lag.worst >= 0.25 and lag.worst_busy < 0.1
        spin(0.3)
        await asyncio.sleep(0.1)
        assert lag.worst_busy >= 0.2
    finally:
        assert lag._task is not None
        lag._task.cancel()
