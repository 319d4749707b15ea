"""Every patch this project makes to faust-streaming, in one module, checked at install.

faust-streaming 0.15.x loses messages around rebalances in several ways; each patch
below closes one by giving up an optimisation, never correctness. :func:`install`
refuses to run (one line naming the version) unless faust is a supported version and
every attribute it patches is there with the expected signature, so an upgrade cannot
silently turn a guard off. Each patch has a unit test that fails without it
(``tests/unit/test_faust_compat.py``).

1. **Stale acks** (``Consumer.ack``). The stream iterator skips a message fetched before
   a rebalance and *acks* it "so lag does not grow"; the commit then moves past a
   message no agent processed (faust-streaming #527). Acks of another consumer
   generation, or while flow is suspended, are refused.
2. **Read offsets** (``Consumer.__init__``). The fetch loop drops re-fetched messages
   below a per-partition "read offset" that also advanced for abandoned messages
   ("DROPPED MESSAGE ROFF"), and counts offset jumps as acked "gaps". Both are off: every
   fetched message is delivered, and a partition with offset holes (compacted or
   transactional input) commits only up to its first hole (a restart replays from there).
3. **Seek on assignment** (``Consumer.perform_seek``). After a rebalance faust seeks
   every partition to its committed offset, but aiokafka's ``seek_to_committed`` does
   nothing for a partition with no committed offset yet, so the fetch position stays
   past the messages faust dropped when the generation changed (the rest of a fetched
   batch). The patch seeks such partitions to their log start and records that as the
   commit base. And the seeks run one at a time: Faust calls ``perform_seek`` from the
   recovery and from its fetch loop (records fetched while a rebalance stopped the flow
   are dropped, and the fetch loop seeks them back), and the two calls can interleave
   in the consumer thread, so a partition could end up at one call's offset with the
   other call's commit base. A base below the position never commits again and, on an
   idle partition, never counts as caught up: its watermark stops and the join stops
   deciding. Each call now reads, seeks and records its bases under one lock, shielded
   from cancellation, so the last call's offsets are both the position and the base.
4. **Commit only a contiguous run from the base** (``Consumer._new_offset``). Faust
   checks for a hole at the head of the acked offsets only when the committed offset is
   truthy (not for None or 0), and with an off-by-one (a hole of exactly one message is
   committed over). The patch commits the run of acked offsets that starts exactly at
   the committed offset, and nothing while that base is unknown. And a worker timer
   (:func:`repair_holes`) re-fetches a partition that stands still behind its log:
   after some rebalances Faust fetched past messages it never delivered (the short soak
   test, one run in three or four: tens to hundreds of offsets after the base never
   reached an agent while later ones did, or the tail of a partition never did), so
   the commit stopped there for good, the callbacks in the hole were never counted and
   the watermark of that input never reached "caught up". A partition stands still
   when, for :data:`HOLE_GRACE_SECONDS` in one consumer generation, its acked offsets
   start above its base, or nothing is acked while the log ends beyond the base, or it
   has no base at all; it is then sought back to its base (through the consumer
   thread, under the seek lock). Processing is idempotent, so what was handled already
   is only handled again. A partition still standing after :data:`HOLE_REPAIRS`
   re-fetches has a real gap in its log (compacted or transactional input): logged
   once, left as it is. The agents never process past a hole (``order.py``; they ask
   for the re-fetch themselves through :func:`schedule_refetch`), so the timer is left
   with the holes no later message reveals: a partition's tail, and no base at all.
   A re-fetch holds the seek lock at most :data:`REFETCH_TIMEOUT_SECONDS` (its seek
   waits on the broker through the consumer thread; an outage must not leave the lock
   held when the recovery's seek needs it), and a partition has at most one re-fetch
   pending (during an outage every partition stands still).

5. **No task per message** (``Consumer._drain_messages``). The fetch loop wraps every
   message's delivery in ``wait_first(callback(message), suspend_flow.wait())``: two
   tasks and an ``asyncio.wait`` per message, so that a delivery blocked on a full
   stream buffer is abandoned when a rebalance suspends the flow (faust-streaming
   #223). The patch starts the delivery in place; only when it must wait (the buffer is
   full) does it finish under the same ``wait_first``. Messages fetched while the flow
   is suspended are not delivered, as before (their partitions are sought again after
   the rebalance). The read-offset and gap bookkeeping of the original loop is gone
   with patch 2.

Not patches: :class:`KeyedTable` reads and writes a row in its partition's RocksDB
database only (Faust asks every partition's, twice) and sends the changelog records of a
batch together, acknowledged before the batch is (Faust's 100-record producer buffer
throttled every incoming message); :class:`SlimMonitor` is the app's ``Monitor``.
Faust's default keeps per-event statistics nobody here reads (runtimes, counts per
stream and task, per-table key counters); the slim one keeps only what Faust itself
reads (the stream inbound time its stall detector uses, and the per-commit offsets).

Together 3 and 4 keep the invariant the audit (``stream-app audit``) checks: every
offset a worker commits on an input topic was processed.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import inspect
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any, cast

import orjson
from faust.sensors.monitor import Monitor
from faust.stores.rocksdb import Store as RocksDBStore
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread as ConsumerThread
from faust.transport.drivers.aiokafka import Producer as KafkaProducer
from faust.types import TP
from faust.utils.functional import consecutive_numbers

from stream_app.core.batches import PartitionLost
from stream_app.core.delivery import KafkaBatches, Producer, Record
from stream_app.core.topics import KeyedPartitioner

logger = logging.getLogger(__name__)

SUPPORTED_PREFIX = "0.15."
"""faust-streaming versions whose internals these patches were written against."""

# The attributes each patch replaces, with the parameters the original must have.
EXPECTED: dict[str, tuple[str, ...]] = {
    "ack": ("self", "message"),
    "__init__": ("self", "transport", "callback", "on_partitions_revoked",
                 "on_partitions_assigned", "commit_interval", "commit_livelock_soft_timeout",
                 "loop", "kwargs"),
    "perform_seek": ("self",),
    "_new_offset": ("self", "tp"),
    "_drain_messages": ("self", "fetcher"),
}

# What :class:`KeyedTable` uses of the RocksDB store, with the parameters it passes.
STORE_ACCESS: dict[str, tuple[str, ...]] = {
    "_db_for_partition": ("self", "partition"),
    "set_persisted_offset": ("self", "tp", "offset"),
}

_installed = False


class IncompatibleFaust(RuntimeError):
    """The installed faust-streaming is not the one these patches were checked against."""


def check(faust_version: str | None = None, consumer: type = Consumer) -> None:
    """Raise :class:`IncompatibleFaust` unless every patch still fits."""
    found = faust_version or version("faust-streaming")
    if not found.startswith(SUPPORTED_PREFIX):
        raise IncompatibleFaust(f"faust-streaming {found} is not supported "
                                f"(needs {SUPPORTED_PREFIX}x; see stream_app/faust_compat.py)")
    for name, params in MONITOR_HOOKS.items():
        got = tuple(inspect.signature(getattr(Monitor, name)).parameters)
        if got != params:
            raise IncompatibleFaust(f"faust-streaming {found}: Monitor.{name}{got} changed "
                                    f"(expected {params})")
    for name, params in STORE_ACCESS.items():
        got = tuple(inspect.signature(getattr(RocksDBStore, name)).parameters)
        if got != params:
            raise IncompatibleFaust(f"faust-streaming {found}: rocksdb Store.{name}{got} "
                                    f"changed (expected {params})")
    for name, params in EXPECTED.items():
        original = getattr(consumer, name, None)
        if not callable(original):
            raise IncompatibleFaust(f"faust-streaming {found}: Consumer.{name} is missing")
        got = tuple(inspect.signature(original).parameters)
        if got != params:
            raise IncompatibleFaust(f"faust-streaming {found}: Consumer.{name}{got} changed "
                                    f"(expected {params})")
    if tuple(inspect.signature(KafkaProducer._ensure_producer).parameters) != ("self",):
        raise IncompatibleFaust(f"faust-streaming {found}: the aiokafka Producer's "
                                "_ensure_producer changed")
    seek_wait = getattr(ConsumerThread, "seek_wait", None)
    if seek_wait is None or tuple(inspect.signature(seek_wait).parameters) != ("self",
                                                                              "partitions"):
        raise IncompatibleFaust(f"faust-streaming {found}: AIOKafkaConsumerThread.seek_wait "
                                "changed")
    _check_assigned(found, consumer, ("_committed_offset", "_acked", "_acked_index",
                                      "_read_offset"))


def _check_assigned(found: str, consumer: type, attrs: tuple[str, ...]) -> None:
    """Each attribute the patches use is assigned in the consumer's own ``__init__``
    (``self.<attr> =`` or ``self.<attr>: T =``; a longer name does not count)."""
    init = vars(consumer).get("__init__")
    try:
        source = inspect.getsource(inspect.unwrap(init)) if init is not None else ""
    except (OSError, TypeError):
        source = ""
    for attr in attrs:
        if not re.search(rf"self\.{attr}\s*(:[^=\n]+)?=(?!=)", source):
            raise IncompatibleFaust(f"faust-streaming {found}: Consumer.{attr} is gone")


def install() -> None:
    """Check, then patch faust's Consumer once per process."""
    global _installed
    if _installed:
        return
    check()
    Consumer.ack = _refuse_stale_acks(Consumer.ack)  # type: ignore[method-assign,assignment]
    Consumer.__init__ = _without_read_offsets(Consumer.__init__)  # type: ignore[method-assign]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
    Consumer._drain_messages = drain_messages  # type: ignore[method-assign]
    _installed = True


# -- 1. stale acks ----------------------------------------------------------------------

def _refuse_stale_acks(original: Callable[[Consumer, Any], bool]
                       ) -> Callable[[Consumer, Any], bool]:
    def ack(self: Consumer, message: Any) -> bool:
        app = self.app
        stale = (message.generation_id is not None
                 and message.generation_id != app.consumer_generation_id)
        if stale or not app.flow_control.is_active():
            return False
        return original(self, message)

    return ack


# -- 2. read offsets --------------------------------------------------------------------

class NoReadOffsets(dict):  # type: ignore[type-arg]
    """A read-offset map that remembers nothing: no message is ever dropped as 'read'."""

    def __getitem__(self, key: Any) -> None:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def pop(self, key: Any, default: Any = None) -> Any:
        return default


def _without_read_offsets(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def init(self: Consumer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._read_offset = NoReadOffsets()

    return init


# -- 3. seek on assignment ----------------------------------------------------------------

async def perform_seek(self: Consumer) -> None:
    """Seek every stream partition to its committed offset, or to its log start if none.

    Records the offset sought as the partition's commit base (``_committed_offset``), so
    :func:`new_offset` never commits past a message that was not processed. Invariant:
    after the call, each partition's fetch position and commit base come from the same
    call (see the module doc); a call cancelled midway still finishes.
    """
    await asyncio.shield(_seek_alone(self))


SEEK_LOCK = "_stream_app_seek_lock"


def _seek_lock(self: Consumer) -> asyncio.Lock:
    """The consumer's one lock around seeks (perform_seek, hole repairs)."""
    lock: asyncio.Lock | None = self.__dict__.get(SEEK_LOCK)
    if lock is None:
        lock = self.__dict__[SEEK_LOCK] = asyncio.Lock()
    return lock


async def _seek_alone(self: Consumer) -> None:
    async with _seek_lock(self):
        await _seek_and_record_bases(self)


async def _seek_and_record_bases(self: Consumer) -> None:
    committed: Mapping[Any, int | None] = await self.seek_to_committed()
    changelogs = self.app.tables.changelog_topics
    bases = {TP(tp.topic, tp.partition): offset for tp, offset in committed.items()
             if offset is not None and offset > 0}
    missing = [TP(tp.topic, tp.partition) for tp, offset in committed.items()
               if (offset is None or offset <= 0) and tp.topic not in changelogs]
    if missing:
        starts = await self.earliest_offsets(*missing)
        for tp in missing:
            start = int(starts.get(tp) or 0)
            await self._seek(tp, start)
            bases[tp] = start
    self._committed_offset.update(bases)


# -- 4. commit only a contiguous run from the base ---------------------------------------

def new_offset(self: Consumer, tp: TP) -> int | None:
    """The offset to commit for ``tp``: one past the acked run starting at the base.

    Invariant: every offset below the returned one, from the base up, was acked.
    """
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    base = self._committed_offset[tp]
    if base is None:
        return None
    acked.sort()
    below = bisect.bisect_left(acked, base)
    if below:
        self._acked_index[tp].difference_update(acked[:below])
        del acked[:below]
    if not acked or acked[0] != base:
        return None
    run = list(next(consecutive_numbers(acked)))
    del acked[:len(run)]
    self._acked_index[tp].difference_update(run)
    return run[-1] + 1


HOLE_GRACE_SECONDS = 10.0
"""How long a partition may stand still behind its log before it is fetched again."""
REFETCH_TIMEOUT_SECONDS = 15.0
"""How long a re-fetch's seek may hold the seek lock."""
HOLE_REPAIRS = 3
"""Repairs per partition and base before a hole is taken for a gap in the log."""
HOLES = "_stream_app_holes"
_now = time.monotonic


class Hole:
    """A partition standing still at ``base`` in one generation, seen since ``since``."""

    __slots__ = ("base", "generation", "repairs", "since")

    def __init__(self, base: int | None, generation: int, since: float) -> None:
        self.base, self.generation, self.since, self.repairs = base, generation, since, 0


def repair_holes(self: Any) -> None:
    """Re-fetch every stream partition that stands still behind its log (see the module
    doc, patch 4); called once a second by a worker timer.

    A partition stands still when, in one consumer generation with the flow running:
    it has no commit base (the recovery's seek never ran: ``perform_seek`` again), or
    its acked offsets start above the base (a hole at the head), or nothing is acked
    while the log's end is beyond the base (a hole at the tail). A busy partition
    commits, which moves its base, so it never qualifies.
    """
    app = self.app
    if app.rebalancing or not app.flow_control.is_active():
        return
    changelogs = app.tables.changelog_topics
    for tp in self.assignment():
        if tp.topic in changelogs:
            continue
        base: int | None = self._committed_offset.get(tp)
        if base is None or _stands_still(self, tp, base):
            _notice_hole(self, tp, base)
        else:
            self.__dict__.get(HOLES, {}).pop(tp, None)


def _stands_still(self: Consumer, tp: TP, base: int) -> bool:
    acked = [offset for offset in self._acked.get(tp, ()) if offset >= base]
    if acked:
        return min(acked) > base
    end = self.highwater(tp)
    return end is not None and end > base


def _notice_hole(self: Consumer, tp: TP, base: int | None) -> None:
    """Schedule a re-fetch of ``tp`` once it stood still for the grace period."""
    holes: dict[TP, Hole] = self.__dict__.setdefault(HOLES, {})
    generation = self.app.consumer_generation_id
    hole = holes.get(tp)
    now = _now()
    if hole is None or hole.base != base or hole.generation != generation:
        holes[tp] = Hole(base, generation, now)
        return
    if now - hole.since < HOLE_GRACE_SECONDS * (hole.repairs + 1):
        return
    if hole.repairs >= HOLE_REPAIRS:
        if hole.repairs == HOLE_REPAIRS:
            logger.error("%s[%d]: nothing from offset %s on arrives after %d re-fetches; a "
                         "gap in the log? The commit stays there", tp.topic, tp.partition,
                         base, HOLE_REPAIRS)
            hole.repairs += 1
        return
    hole.repairs += 1
    hole.since = now
    logger.warning("%s[%d] stands still at offset %s behind its log; fetching it again",
                   tp.topic, tp.partition, base)
    schedule_refetch(self, tp, base, generation,
                     lambda: self._committed_offset.get(tp) == base)


def schedule_refetch(self: Any, tp: TP, offset: int | None, generation: int | None,
                     still: Callable[[], bool] = lambda: True) -> None:
    """Seek ``tp`` back to ``offset`` soon, in a task of its own (the caller may be the
    agent whose stream the seek feeds; see :func:`refetch`). At most one per partition
    at a time: during an outage every partition stands still, and re-fetches queued
    behind one another would hold the seek lock for a long time after it ends."""
    tasks: dict[TP, asyncio.Future[None]] = self.__dict__.setdefault(
        "_stream_app_refetches", {})
    if tp in tasks:
        return
    task = asyncio.ensure_future(refetch(self, tp, offset, generation, still))
    tasks[tp] = task
    task.add_done_callback(lambda _: tasks.pop(tp, None))


async def refetch(self: Consumer, tp: TP, offset: int | None, generation: int | None,
                  still: Callable[[], bool] = lambda: True) -> None:
    """Seek ``tp`` back to ``offset`` through the consumer thread, under the seek lock,
    unless a rebalance got there first or ``still()`` no longer holds; no offset: seek
    every partition, as a recovery does."""
    if offset is None:
        await perform_seek(self)
        return
    async with _seek_lock(self):
        if (self.app.consumer_generation_id == generation and tp in self.assignment()
                and still()):
            try:
                # Bounded: the seek waits on the consumer thread, which waits on the
                # broker; the lock must not be held through an outage (the recovery's
                # seek after a rebalance needs it). A partition still standing still is
                # found again by the repair timer.
                await asyncio.wait_for(cast(Any, self)._thread.seek_wait({tp: offset}),
                                       REFETCH_TIMEOUT_SECONDS)
            except Exception as exc:  # a rebalance took it meanwhile: its recovery seeks
                logger.warning("re-fetch of %s[%d] abandoned: %r", tp.topic, tp.partition, exc)


# -- 5. no task per message ----------------------------------------------------------------

class Resumed:
    """Awaitable that finishes a coroutine already started by hand (``coro.send(None)``
    returned ``waiting``, the future it waits on). Cancellation and every other
    exception thrown into the awaiting task are passed on to the coroutine."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Any, waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    def __await__(self) -> Any:
        waiting = self.waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:
                try:
                    waiting = self.coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting = self.coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def deliver(consumer: Any, message: Any) -> None:
    """Hand ``message`` to its stream; a task only if the stream buffer is full."""
    if consumer.suspend_flow.is_set():
        return
    coro = consumer.callback(message)
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    await consumer.wait_first(Resumed(coro, waiting), consumer.suspend_flow.wait())


async def drain_messages(self: Consumer, fetcher: Any) -> None:
    """Faust's fetch loop (``Consumer._drain_messages``) with :func:`deliver`."""
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    fetching = "FETCHING"
    since_yield = 0
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            self.diag.set_flag(fetching)
            messages = getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                async for _tp, message in messages:
                    since_yield += 1
                    if since_yield > 100:
                        await asyncio.sleep(0)
                        since_yield = 0
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await deliver(self, message)
                self.diag.unset_flag(fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            return
        raise
    except Exception as exc:
        logger.exception("Drain messages raised: %r", exc)
        raise
    finally:
        self.diag.unset_flag(fetching)


# -- the slim Monitor ------------------------------------------------------------------------

MONITOR_HOOKS: dict[str, tuple[str, ...]] = {
    "on_message_in": ("self", "tp", "offset", "message"),
    "on_stream_event_in": ("self", "tp", "offset", "stream", "event"),
    "on_stream_event_out": ("self", "tp", "offset", "stream", "event", "state"),
    "on_message_out": ("self", "tp", "offset", "message"),
    "on_table_get": ("self", "table", "key"),
    "on_table_set": ("self", "table", "key", "value"),
    "on_table_del": ("self", "table", "key"),
}


class SlimMonitor(Monitor):
    """Faust's Monitor without the per-event bookkeeping (see the module doc)."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = time.monotonic()

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None


def processed_base(app: Any, tp: TP) -> int | None:
    """The offset this worker resumed ``tp`` from (the commit base :func:`perform_seek`
    recorded), or None before it was assigned and sought."""
    base = app.consumer._committed_offset.get(tp)
    return None if base is None else int(base)


# -- where a contact's state lives, and who may write it -----------------------------------

class KeyedPartitions:
    """The join's :class:`~stream_app.core.join.Partitions` in a Faust worker.

    The tables use ``use_partitioner`` with raw key bytes, the very bytes the keyed
    records carry, so the producer's partitioner puts a contact's changelog rows on the
    partition number of its keyed records (a JSON-serialised key would hash elsewhere and
    hand the state to whichever worker owns *that* number). ``of`` is that partitioner.
    """

    def __init__(self, app: Any, topic: str, count: int) -> None:
        self.app = app
        self.topic = topic
        self.of = KeyedPartitioner(count)
        self._assigned: tuple[int | None, frozenset[int]] = (None, frozenset())

    def owned(self, partition: int) -> bool:
        generation = self.app.consumer_generation_id
        if self._assigned[0] != generation:
            mine = frozenset(tp.partition for tp in self.app.consumer.assignment()
                             if tp.topic == self.topic)
            self._assigned = (generation, mine)
        return partition in self._assigned[1]

    def epoch(self) -> int:
        return int(self.app.consumer_generation_id)

    def still_writable(self, partition: int) -> bool:
        """This worker owns ``partition`` and no rebalance has started."""
        return bool(self.app.flow_control.is_active()) and self.owned(partition)

    @contextmanager
    def writing(self, partition: int) -> Iterator[None]:
        """Refuse (:class:`PartitionLost`) once a rebalance started or gave the partition
        away: the check and the writes run without an ``await`` between them, so a write
        either precedes the revocation (whose ``send_changes`` sends it before the new
        owner recovers, :class:`KeyedTable`) or does not happen."""
        if not self.still_writable(partition):
            raise PartitionLost(f"{self.topic}[{partition}] is no longer this worker's")
        yield


class KeyedTable(MutableMapping[bytes, Any]):
    """A Faust table read and written the short way, its changelog sent per batch.

    Reads: ``Table.get`` on a RocksDB store with ``use_partitioner`` asks every
    partition's database it holds, twice (``key in store``, then ``store[key]``), and a
    missing key costs a ``KeyError`` on top. A contact's row is only ever in the database
    of its keyed partition (:class:`KeyedPartitions`), so that is the only one read.

    Values are JSON, as Faust's codec writes them for these tables, but encoded and
    decoded with orjson (Faust's registry also walks every decoded payload looking for
    model namespaces).

    Writes: ``Table.__setitem__`` queues a changelog record in Faust's producer buffer
    (100 records, then every incoming message waits for it to ebb) and writes the store
    and, once sent, the persisted offset, per write. Here a write goes to the store at
    once and its changelog record waits in :attr:`unsent` (the latest value per key);
    :meth:`send_changes` sends them, waits for the broker, and records the persisted
    offsets. Invariants, with the worker's help (``agents.py``):

    - a batch is acked only after its changes were sent and acknowledged (the contacts
      step ends with ``send_changes``), like every other record it causes;
    - a revocation sends what is unsent before the partitions go (``on_partitions_revoked``),
      as Faust flushes its buffer, so the next owner recovers every write made here;
    - records for one key leave in the order they were written (one sender at a time);
    - the persisted offset only grows past records the local store holds, and is not
      touched for a partition this worker no longer owns (a lower one is always safe:
      recovery replays more).
    """

    def __init__(self, table: Any, partitions: KeyedPartitions) -> None:
        if table.value_serializer != "json":
            raise IncompatibleFaust(f"table {table.name}: KeyedTable needs JSON values")
        self.table = table
        self.partitions = partitions
        self.of = partitions.of
        self.unsent: dict[bytes, tuple[int, bytes | None]] = {}
        self.sending = asyncio.Lock()

    def get(self, key: bytes, default: Any = None) -> Any:
        store = self.table.data
        if not isinstance(store, RocksDBStore):
            return self.table.get(key, default)
        raw = store._db_for_partition(self.of(key)).get(key)
        return default if raw is None else orjson.loads(raw)

    def __setitem__(self, key: bytes, value: Any) -> None:
        """Write ``key`` (inside ``KeyedPartitions.writing`` of its partition)."""
        store, partition = self.table.data, self.of(key)
        raw = orjson.dumps(value)
        if isinstance(store, RocksDBStore):
            store._db_for_partition(partition).put(key, raw)
        else:
            store[key] = value
        self.unsent[key] = (partition, raw)

    def __delitem__(self, key: bytes) -> None:
        store, partition = self.table.data, self.of(key)
        if isinstance(store, RocksDBStore):
            store._db_for_partition(partition).delete(key)
        else:
            store.pop(key, None)
        self.unsent[key] = (partition, None)

    def pop(self, key: bytes, default: Any = None) -> Any:
        value = self.get(key)
        if value is None:
            return default
        del self[key]
        return value

    def __getitem__(self, key: bytes) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[bytes]:
        """RocksDB iterators read a snapshot, so a scan may yield while rows are written;
        an in-memory store is a dict, iterated over a copy of its keys for the same
        reason."""
        if isinstance(self.table.data, RocksDBStore):
            return iter(self.table)
        return iter(list(self.table))

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> Any:
        return self.table.items()

    async def send_changes(self, producer: Producer) -> None:
        """Send the changelog records of every write so far and wait for the broker.

        On failure the records not superseded by a newer write go back to
        :attr:`unsent` (the caller retries the batch)."""
        async with self.sending:
            changes, self.unsent = self.unsent, {}
            if not changes:
                return
            topic = self.table.changelog_topic.get_topic_name()
            by_partition: dict[int, list[Record]] = {}
            for key, (partition, raw) in changes.items():
                by_partition.setdefault(partition, []).append(Record(key, raw))
            try:
                sent = {partition: await producer.send_records(topic, partition, records)
                        for partition, records in by_partition.items()}
                newest = dict(zip(sent, await asyncio.gather(*sent.values()), strict=True))
            except BaseException:
                for key, change in changes.items():
                    self.unsent.setdefault(key, change)
                raise
            for partition, offset in newest.items():
                if self.partitions.still_writable(partition):
                    self.table.data.set_persisted_offset(TP(topic, partition), offset)


def kafka_producer(producer: Any) -> KafkaBatches:
    """The aiokafka producer behind Faust's (``delivery.Sender`` sends batches with it;
    Faust's own ``send`` takes one record at a time)."""
    return cast(KafkaBatches, producer._ensure_producer())
