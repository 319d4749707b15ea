"""Where every asyncio task of the worker is waiting: the evidence for a hang.

A worker that stops making progress while its loop still runs is waiting on something
that never comes; the question is *what*. asyncio's own ``Task.print_stack`` stops at
the first async generator (Faust's streams and fetch loop are async generators), so
this follows the whole chain of awaits: coroutines through ``cr_await``, and an async
generator's ``asend`` through the generator a frame is iterating (found among the
frame's locals: the one that is running). It covers any number of loops, Faust's
consumer thread included (its loop runs in another thread; reading its task list from
here is a snapshot, good enough for a diagnosis and retried if the set changes).

No Faust, Kafka or Redis import: the worker hands in the loops.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import Any

MAX_DEPTH = 40


def dump(loops: Mapping[str, asyncio.AbstractEventLoop]) -> str:
    """Every task of every loop with the chain of frames it waits in, innermost last."""
    lines: list[str] = []
    for name, loop in loops.items():
        tasks = _tasks(loop)
        lines.append(f"== loop {name}: {len(tasks)} tasks")
        for task in sorted(tasks, key=lambda t: t.get_name()):
            lines.append(f"-- task {task.get_name()} {_state(task)}")
            lines.extend(f"     {frame}" for frame in chain(task.get_coro()))
    return "\n".join(lines)


def _tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    for _ in range(10):
        try:
            return list(asyncio.all_tasks(loop))
        except RuntimeError:  # the set changed size under us (another thread's loop)
            continue
    return []


def _state(task: asyncio.Task[Any]) -> str:
    if task.done():
        return "done"
    waiting = getattr(task, "_fut_waiter", None)
    return f"waiting on {waiting!r}"[:200] if waiting is not None else "ready"


def chain(awaitable: Any) -> Iterator[str]:
    """``file:line in function`` for each frame of the await chain of ``awaitable``."""
    current, caller = awaitable, None
    for _ in range(MAX_DEPTH):
        frame = _frame_of(current)
        if frame is None:
            generator = _running_generator(caller)
            if generator is None:
                if current is not None:
                    yield f"(awaiting {type(current).__name__})"
                return
            current = generator
            continue
        yield f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        caller = current
        current = _awaited_by(current)
        if current is None:
            return


def _frame_of(obj: Any) -> FrameType | None:
    for attr in ("cr_frame", "ag_frame", "gi_frame"):
        frame = getattr(obj, attr, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def _awaited_by(obj: Any) -> Any:
    for attr in ("cr_await", "ag_await", "gi_yieldfrom"):
        if hasattr(obj, attr):
            return getattr(obj, attr)
    return None


def _running_generator(caller: Any) -> Any:
    """The async generator ``caller`` (a coroutine or generator) is iterating now: its
    ``asend`` hides it."""
    frame = _frame_of(caller)
    if frame is None:
        return None
    # A named generator is among the locals; ``async for x in f():`` keeps it on the
    # frame's value stack only, which the garbage collector's view of its owner shows.
    for value in (*frame.f_locals.values(), *gc.get_referents(caller)):
        if inspect.isasyncgen(value) and value.ag_running:
            return value
    return None
