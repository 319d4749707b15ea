"""What a patch is: the attribute it replaces, the signature it was written against, and
the consumer attributes it relies on. Checked before anything is patched, so a faust
upgrade cannot silently turn a guard off."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SUPPORTED_PREFIX = "0.15."
"""faust-streaming versions whose internals these patches were written against."""
SUPPORTED_AIOKAFKA_PREFIX = "0.14."
"""aiokafka versions whose internals ``closed_transport`` and ``metadata_sync`` were
written against."""


class IncompatibleFaust(RuntimeError):
    """The installed faust-streaming is not the one these patches were checked against."""


@dataclass(frozen=True)
class Signature:
    """``owner.attribute`` must exist with exactly these parameters."""

    owner: type
    attribute: str
    params: tuple[str, ...]

    def problem(self) -> str | None:
        """What is wrong with it in the installed faust, or None."""
        found = getattr(self.owner, self.attribute, None)
        if not callable(found):
            return f"{self.owner.__name__}.{self.attribute} is missing"
        got = tuple(inspect.signature(found).parameters)
        if got != self.params:
            return (f"{self.owner.__name__}.{self.attribute}{got} changed "
                    f"(expected {self.params})")
        return None


@dataclass(frozen=True)
class Patch:
    """Replace ``target`` with ``replace(original)``. ``assigned``: attributes of the
    target's class the replacement reads, which its own ``__init__`` must assign."""

    name: str
    target: Signature
    replace: Callable[[Any], Any]
    assigned: tuple[str, ...] = ()


def check_assigned(found: str, owner: type, attrs: tuple[str, ...]) -> None:
    """Each attribute is assigned in ``owner``'s own ``__init__`` (``self.<attr> =`` or
    ``self.<attr>: T =``; a longer name does not count)."""
    init = vars(owner).get("__init__")
    try:
        source = inspect.getsource(inspect.unwrap(init)) if init is not None else ""
    except (OSError, TypeError):
        source = ""
    for attr in attrs:
        if not re.search(rf"self\.{attr}\s*(:[^=\n]+)?=(?!=)", source):
            raise IncompatibleFaust(f"faust-streaming {found}: {owner.__name__}.{attr} is gone")
