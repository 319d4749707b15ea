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
