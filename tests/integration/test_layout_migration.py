"""`migrate-layout`: counters written with the layout before hash tags are read again,
copied once, their TTLs kept; a second run copies nothing; a key a new worker already
wrote is reported, never overwritten."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from redis.asyncio import Redis

from stream_app.core.store.layout import call_key, env_part, stats_key
from stream_app.core.store.migration import migrate
from tests.conftest import Endpoints

pytestmark = pytest.mark.integration

DAY, MONTH = "2026-11-30", "2026-11"


async def legacy_environment(source: Redis) -> str:
    """An environment as the layout before hash tags wrote it."""
    env = f"env-{uuid.uuid4().hex[:10]}"
    e = env_part(env)
    for period in (DAY, MONTH):
        await source.hset(f"cbs:stats:{e}:{period}",
                          mapping={"received": 3, "answered": 2, "unmatched": 1, "src:a1": 2})
    await source.hset(f"cbs:names:{e}", "a1", "Sales")
    await source.hset(f"cbs:names_at:{e}", "a1", "100.0")
    await source.hset(f"cbs:call:{e}:c1", mapping={"e": "1.0", "d": DAY})
    await source.expire(f"cbs:call:{e}:c1", 5000)
    await source.zadd(f"cbs:config:{e}:cb1", {'{"u":1.0,"s":["a1"],"n":null}': 1.0})
    return env


async def test_the_old_keys_are_read_again_after_the_migration(endpoints: Endpoints) -> None:
    source = await _source(endpoints)
    store = endpoints.store()
    try:
        env = await legacy_environment(source)
        assert (await store.read_stats(env, [DAY])).received == 0, "not migrated yet"
        first = await migrate(source, store.redis)
        assert first.copied == 6 and not first.already_there
        stats = await store.read_stats(env, [DAY])
        assert (stats.received, stats.answered, stats.unmatched) == (3, 2, 1)
        assert stats.by_source == {"a1": 2} and stats.names == {"a1": "Sales"}
        assert (await store.read_range(env, date(2026, 11, 1), date(2026, 11, 30))).received == 3
        assert 0 < await store.redis.ttl(call_key(env, "c1")) <= 5000
        again = await migrate(source, store.redis, delete_old=True)
        assert again.copied == 0 and not again.already_there
        assert again.deleted == 6
        assert await source.exists(f"cbs:stats:{env_part(env)}:{DAY}") == 0
        assert (await store.read_stats(env, [DAY])).received == 3
    finally:
        await source.aclose()
        await store.close()


async def test_a_key_already_written_in_the_new_layout_is_reported_and_kept(
        endpoints: Endpoints) -> None:
    source = await _source(endpoints)
    store = endpoints.store()
    try:
        env = await legacy_environment(source)
        await store.redis.hset(stats_key(env, DAY), "received", 1)  # a new worker ran
        done = await migrate(source, store.redis, delete_old=True)
        assert done.already_there == [stats_key(env, DAY)]
        assert done.deleted == 0, "nothing deleted while a conflict stands"
        assert await store.redis.hget(stats_key(env, DAY), "received") == "1"
    finally:
        await source.aclose()
        await store.close()


SOURCE_DB = 7


async def _source(endpoints: Endpoints) -> Redis:
    """The old layout never ran on a cluster: its keys come from one Redis server (the
    suite's, also when the new layout is on a cluster), in a database of this module's
    own (emptied first), so a migration sees no other test's keys."""
    url = "redis://127.0.0.1:6379/0" if endpoints.redis_cluster else endpoints.redis_url
    source = Redis.from_url(url.rsplit("/", 1)[0] + f"/{SOURCE_DB}")
    await source.flushdb()
    return source
