"""Installs every faust-streaming and aiokafka patch, once per process, after checking
them all (with :mod:`stream_app.patching`).

faust-streaming 0.15.x loses messages around rebalances in several ways; each patch
closes one by giving up an optimisation, never correctness (the module of each says
which, and ``tests/unit/worker/patches/`` has a test per patch that fails without it).
Two patches are of aiokafka (``closed_transport``: a connection error on uvloop that
nothing caught; ``absent_offsets``: what a fetch read past without a record), and
``read_committed`` makes the worker's consumer read only committed records.
:func:`install` refuses to run (one line naming the version and what changed) unless
faust and aiokafka are supported versions, every attribute a patch replaces has the
signature it was written against, every attribute a patch reads is still assigned by its
class, and everything else this package reaches into (:data:`REQUIRES`) is still there.
"""

from __future__ import annotations

from importlib.metadata import version

from stream_app.patching import (
    Patch,
    Signature,
    check_assigned,
    check_signatures,
    check_version,
)
from stream_app.worker import holes, metadata_sync, monitor, tables
from stream_app.worker.patches import (
    absent_offsets,
    closed_transport,
    contiguous_commit,
    drain,
    idempotent_producer,
    read_committed,
    read_offsets,
    seek_on_assignment,
    stale_acks,
    stale_store,
)

SUPPORTED_PREFIX = "0.15."
"""faust-streaming versions whose internals these patches were written against."""
SUPPORTED_AIOKAFKA_PREFIX = "0.14."
"""aiokafka versions whose internals ``closed_transport`` and ``metadata_sync`` were
written against."""

PATCHES: tuple[Patch, ...] = (
    stale_acks.PATCH,
    read_offsets.PATCH,
    seek_on_assignment.PATCH,
    contiguous_commit.PATCH,
    drain.PATCH,
    stale_store.PATCH,
    idempotent_producer.PATCH,
    closed_transport.PATCH,
    read_committed.PATCH,
    absent_offsets.PATCH,
)
"""Every patch, in the order they are installed."""

REQUIRES: tuple[Signature, ...] = (*holes.REQUIRES, *monitor.REQUIRES, *tables.REQUIRES,
                                   *stale_store.REQUIRES, *metadata_sync.REQUIRES)
"""What the rest of the Faust side uses of faust's internals without replacing it."""

ALSO_ASSIGNED = (*read_committed.ALSO_ASSIGNED, *absent_offsets.ALSO_ASSIGNED)
"""Attributes of other classes than a patch's target that a replacement reads or sets."""

_installed = False


def check(faust_version: str | None = None,
          patches: tuple[Patch, ...] = PATCHES,
          requires: tuple[Signature, ...] = REQUIRES,
          aiokafka_version: str | None = None) -> None:
    """Raise :class:`~stream_app.patching.Incompatible` unless every patch still fits."""
    found = faust_version or version("faust-streaming")
    check_version("faust-streaming", found, SUPPORTED_PREFIX, "stream_app/worker/patches/")
    check_version("aiokafka", aiokafka_version or version("aiokafka"),
                  SUPPORTED_AIOKAFKA_PREFIX, "stream_app/worker/patches/")
    label = f"faust-streaming {found}"
    check_signatures(label, (*(p.target for p in patches), *requires))
    for patch in patches:
        check_assigned(label, patch.target.owner, patch.assigned)
    for owner, attrs in ALSO_ASSIGNED:
        check_assigned(label, owner, attrs)


def install() -> None:
    """Check, then patch, once per process."""
    global _installed
    if _installed:
        return
    check()
    for patch in PATCHES:
        target = patch.target
        setattr(target.owner, target.attribute,
                patch.replace(getattr(target.owner, target.attribute)))
    _installed = True

