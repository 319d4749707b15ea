"""The one patch mechanism: version, signature and attribute checks."""

from __future__ import annotations

import pytest

from stream_app.patching import (
    Incompatible,
    Signature,
    check_assigned,
    check_signatures,
    check_version,
)


class Target:
    def __init__(self) -> None:
        self.kept = 1

    def method(self, a: int) -> int:
        return a


def test_a_version_outside_the_supported_prefix_is_refused() -> None:
    check_version("lib", "1.2.3", "1.", "here")
    with pytest.raises(Incompatible,
                       match=r"lib 2\.0\.0 is not supported \(needs 1\.x; see here\)"):
        check_version("lib", "2.0.0", "1.", "here")


def test_a_changed_or_missing_signature_is_refused() -> None:
    check_signatures("lib 1.0", [Signature(Target, "method", ("self", "a"))])
    with pytest.raises(Incompatible, match=r"lib 1\.0: Target\.method.*changed"):
        check_signatures("lib 1.0", [Signature(Target, "method", ("self", "b"))])
    with pytest.raises(Incompatible, match=r"Target\.gone is missing"):
        check_signatures("lib 1.0", [Signature(Target, "gone", ("self",))])


def test_an_attribute_no_longer_assigned_is_refused() -> None:
    check_assigned("lib 1.0", Target, ("kept",))
    with pytest.raises(Incompatible, match=r"lib 1\.0: Target\.lost is gone"):
        check_assigned("lib 1.0", Target, ("lost",))
