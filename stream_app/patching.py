"""The one way this project patches a library: what a patch is (the attribute it
replaces, the signature it was written against, the attributes it relies on) and the
checks made before anything is patched, so an upgrade cannot silently turn a guard off.

Used by the Faust and aiokafka patches (``worker/patches/``, installed by
``worker/patch_registry.py``) and by the aiohttp one (``api/protocol_errors.py``). A
module that relies on a library's internals without patching them declares its
:class:`Signature` requirements where it uses them (``REQUIRES``); the registry of its
part collects them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


class Incompatible(RuntimeError):
    """An installed library is not the one a patch was checked against."""


def check_version(library: str, found: str, prefix: str, where: str) -> None:
    """Raise :class:`Incompatible` unless ``found`` (the installed version of
    ``library``) starts with ``prefix``; ``where``: the patches that need it."""
    if not found.startswith(prefix):
        raise Incompatible(f"{library} {found} is not supported (needs {prefix}x; see {where})")


@dataclass(frozen=True)
class Signature:
    """``owner.attribute`` must exist with exactly these parameters."""

    owner: type
    attribute: str
    params: tuple[str, ...]

    def problem(self) -> str | None:
        """What is wrong with it in the installed library, or None."""
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


def check_signatures(label: str, signatures: Iterable[Signature]) -> None:
    """Raise :class:`Incompatible` (its text starting with ``label``) at the first
    signature that no longer fits."""
    for signature in signatures:
        problem = signature.problem()
        if problem is not None:
            raise Incompatible(f"{label}: {problem}")


def check_assigned(label: str, owner: type, attrs: tuple[str, ...]) -> None:
    """Each attribute is assigned in ``owner``'s own ``__init__`` (``self.<attr> =`` or
    ``self.<attr>: T =``; a longer name does not count)."""
    init = vars(owner).get("__init__")
    try:
        source = inspect.getsource(inspect.unwrap(init)) if init is not None else ""
    except (OSError, TypeError):
        source = ""
    for attr in attrs:
        if not re.search(rf"self\.{attr}\s*(:[^=\n]+)?=(?!=)", source):
            raise Incompatible(f"{label}: {owner.__name__}.{attr} is gone")
