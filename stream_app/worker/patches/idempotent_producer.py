"""Patch: every producer idempotent with ``acks=all`` (``Producer._settings_extra``).

Faust turns idempotence on only for transactional producers (``exactly_once``, which this
project does not use: faust-streaming #323, #517). Without it, a send retried after a
broker failover can be written twice or, with several requests in flight, out of order
within a partition. With it, the broker drops a retried batch it already has; with
``acks=all`` a record counts as sent once every in-sync replica has it
(``min.insync.replicas`` of the topic), so a leader dying after the ack loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from faust.transport.drivers.aiokafka import Producer

from stream_app.patching import Patch, Signature

DURABLE = {"acks": "all", "enable_idempotence": True}


def idempotent(original: Callable[[Producer], Mapping[str, Any]]
               ) -> Callable[[Producer], Mapping[str, Any]]:
    def _settings_extra(self: Producer) -> Mapping[str, Any]:
        return {**original(self), **DURABLE}

    return _settings_extra


PATCH = Patch("idempotent producer", Signature(Producer, "_settings_extra", ("self",)),
              idempotent)
