"""The install check: versions, signatures, attributes.

Each test fails without the code it covers."""

from __future__ import annotations

from typing import Any

import pytest
from faust.transport.consumer import Consumer

from stream_app import patching
from stream_app.worker import patch_registry

patch_registry.install()


def test_an_unsupported_version_is_refused() -> None:
    with pytest.raises(patching.Incompatible, match=r"0\.16\.0 is not supported"):
        patch_registry.check("0.16.0")


def test_an_unsupported_aiokafka_is_refused() -> None:
    with pytest.raises(patching.Incompatible, match=r"aiokafka 0\.15\.0 is not supported"):
        patch_registry.check("0.15.3", aiokafka_version="0.15.0")


def test_a_changed_signature_is_refused() -> None:
    class Changed:
        def ack(self, message: Any, extra: int) -> bool:
            return True

    patch = patching.Patch("stale acks", patching.Signature(Changed, "ack", ("self", "message")),
                       lambda original: original)
    with pytest.raises(patching.Incompatible, match=r"Changed\.ack.*changed"):
        patch_registry.check("0.15.3", patches=(patch,))


def test_a_requirement_that_is_gone_is_refused() -> None:
    class Store:
        pass

    gone = patching.Signature(Store, "_db_for_partition", ("self", "partition"))
    with pytest.raises(patching.Incompatible, match=r"Store\._db_for_partition is missing"):
        patch_registry.check("0.15.3", requires=(gone,))


def test_every_patch_is_installed_once() -> None:
    for patch in patch_registry.PATCHES:
        installed = getattr(patch.target.owner, patch.target.attribute)
        assert installed is not None
        assert patch.target.problem() is None, "the installed replacement keeps the signature"
    before = {p.name: getattr(p.target.owner, p.target.attribute) for p in patch_registry.PATCHES}
    patch_registry.install()
    assert before == {p.name: getattr(p.target.owner, p.target.attribute)
                      for p in patch_registry.PATCHES}, "a second install patches nothing again"


def test_the_installed_consumer_passes_the_attribute_check() -> None:
    patching.check_assigned("0.15.3", Consumer, ("_committed_offset", "_acked", "_acked_index"))


def test_an_attribute_no_longer_assigned_is_refused_not_matched_by_a_longer_name() -> None:
    class Renamed:
        def __init__(self) -> None:
            self._acked_index: dict[Any, Any] = {}  # "_acked" is only a prefix here

    with pytest.raises(patching.Incompatible, match=r"Renamed\._acked is gone"):
        patching.check_assigned("0.15.3", Renamed, ("_acked",))


def test_a_consumer_without_an_init_of_its_own_is_refused_not_a_type_error() -> None:
    class NoInit:
        pass

    with pytest.raises(patching.Incompatible, match="_acked is gone"):
        patching.check_assigned("0.15.3", NoInit, ("_acked",))


def test_a_changed_monitor_hook_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.sensors.monitor import Monitor

    monkeypatch.setattr(Monitor, "on_stream_event_in", lambda self, tp, offset: None)
    with pytest.raises(patching.Incompatible, match="on_stream_event_in"):
        patch_registry.check("0.15.3")
