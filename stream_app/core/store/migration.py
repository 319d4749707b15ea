"""Moving data written with the layout before hash tags to the current one.

The key names changed (``cbs:stats:<e>:<day>`` → ``cbs:{<e>}:stats:<day>``), the values
did not: every legacy key is copied as it is (``DUMP``/``RESTORE``, its TTL kept) under
its new name, on the same Redis or on another one (a Redis Cluster). A key already
present under the new name is left alone and reported: the migration runs while no
worker writes (stop the old workers, migrate, start the new ones), so such a key means
a new worker already ran — its counts and the legacy ones would have to be added by
hand. ``delete_old`` removes the legacy keys once every one of them was copied.
Idempotent: a second run finds every key copied (the same value) and copies nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.client import NEVER_DECODE
from redis.exceptions import ResponseError

from stream_app.core.store.client import AnyRedis
from stream_app.core.store.layout import PREFIX, from_legacy

SCAN_COUNT = 1000


@dataclass
class Migration:
    copied: int = 0
    already_there: list[str] = field(default_factory=list)
    """New-layout keys that existed before (their legacy keys are kept)."""
    deleted: int = 0


async def migrate(source: Redis, target: AnyRedis, delete_old: bool = False) -> Migration:
    """Copy every legacy key of ``source`` to its new name on ``target``. ``source``
    must not decode responses (``DUMP`` answers bytes)."""
    done = Migration()
    copied_from: list[str] = []
    async for batch in _legacy_batches(source):
        async with source.pipeline(transaction=False) as pipe:
            for old, _ in batch:
                pipe.dump(old)
                pipe.pttl(old)
            dumped = await pipe.execute()
        async with target.pipeline(transaction=False) as out:
            for (_, new), value, ttl in zip(batch, dumped[::2], dumped[1::2], strict=True):
                if value is not None:  # gone meanwhile (a call record expired)
                    out.restore(new, max(int(ttl), 0), value)
            results = await out.execute(raise_on_error=False)
        present = [(old, new, value) for (old, new), value
                   in zip(batch, dumped[::2], strict=True) if value is not None]
        busy = []
        for (old, new, value), result in zip(present, results, strict=True):
            if isinstance(result, ResponseError) and "BUSYKEY" in str(result):
                busy.append((old, new, value))
            elif isinstance(result, Exception):
                raise result
            else:
                done.copied += 1
                copied_from.append(old)
        for old, new, same in await _same_values(target, busy):
            if same:  # copied by an earlier run
                copied_from.append(old)
            else:
                done.already_there.append(new)
    if delete_old and not done.already_there:
        for i in range(0, len(copied_from), SCAN_COUNT):
            done.deleted += await source.delete(*copied_from[i:i + SCAN_COUNT])
    return done


async def _same_values(target: AnyRedis, keys: list[tuple[str, str, bytes]]
                       ) -> list[tuple[str, str, bool]]:
    """(old, new, whether the new key holds exactly the old one's value)."""
    if not keys:
        return []
    async with target.pipeline(transaction=False) as pipe:
        for _, new, _ in keys:
            pipe.execute_command("DUMP", new, **{NEVER_DECODE: True})
        values = await pipe.execute()
    return [(old, new, now == value) for (old, new, value), now in zip(keys, values,
                                                                       strict=True)]


async def _legacy_batches(source: Redis) -> AsyncIterator[list[tuple[str, str]]]:
    """(legacy key, new key) pairs, a SCAN page at a time."""
    cursor = 0
    while True:
        cursor, keys = await source.scan(cursor, match=f"{PREFIX}:*", count=SCAN_COUNT)
        names = [k.decode() if isinstance(k, bytes) else k for k in keys]
        pairs = [(k, new) for k in names if (new := from_legacy(k)) is not None]
        if pairs:
            yield pairs
        if cursor == 0:
            return
