"""Is a JSON Schema BACKWARD compatible with its released version?

The rule of a schema registry's BACKWARD mode: a reader using the new schema must accept
every record written under the old one. For the record schemas of this project that
means, recursively through properties and array items: no property removed (or renamed:
the old name is gone), no type or value set narrowed, no property newly required, no
bound tightened, no closing of the object (``additionalProperties: false``). Widening
is fine. Structural, not a full JSON Schema containment check: it covers the keywords
these schemas use, and a keyword it does not know that the new schema adds counts as a
narrowing (it cannot prove otherwise).
"""

from __future__ import annotations

from typing import Any

KNOWN = {"$schema", "$id", "title", "description", "type", "properties", "required",
         "items", "enum", "const", "format", "minimum", "maximum", "minLength",
         "maxLength", "pattern", "allOf", "if", "then", "else", "not", "anyOf",
         "additionalProperties"}
LOWER_BOUNDS = ("minimum", "minLength")
UPPER_BOUNDS = ("maximum", "maxLength")


def breaks(old: dict[str, Any], new: dict[str, Any], path: str = "$") -> list[str]:
    """Why ``new`` cannot read what ``old`` allowed (empty: compatible)."""
    problems = _types(old, new, path) + _values(old, new, path) + _bounds(old, new, path)
    for name in new.keys() - old.keys() - {"description", "title"}:
        if name not in KNOWN or name in {"pattern", "format", "allOf", "not", "anyOf",
                                         "if"}:
            problems.append(f"{path}: adds {name!r}")
    if old.get("additionalProperties", True) is not False \
            and new.get("additionalProperties", True) is False:
        problems.append(f"{path}: closes the object (additionalProperties: false)")
    for name, sub in old.get("properties", {}).items():
        if name not in new.get("properties", {}):
            problems.append(f"{path}.{name}: removed (or renamed)")
        else:
            problems += breaks(sub, new["properties"][name], f"{path}.{name}")
    for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
        problems.append(f"{path}.{name}: newly required")
    if "items" in old and "items" in new:
        problems += breaks(old["items"], new["items"], f"{path}[]")
    return problems


def _types(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    was, now = _type_set(old), _type_set(new)
    if now is None or (was is not None and was <= now):
        return []
    if was is None:
        return [f"{path}: type narrowed from any to {sorted(now)}"]
    if was - {"integer"} <= now and "number" in now:
        return []  # every integer is a number
    return [f"{path}: type narrowed from {sorted(was)} to {sorted(now)}"]


def _type_set(schema: dict[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else set(kind)


def _values(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    allowed_now = _value_set(new)
    if allowed_now is None:
        return []
    allowed_before = _value_set(old)
    if allowed_before is None:
        return [f"{path}: values narrowed to {sorted(map(str, allowed_now))}"]
    lost = allowed_before - allowed_now
    return [f"{path}: values {sorted(map(str, lost))} no longer allowed"] if lost else []


def _value_set(schema: dict[str, Any]) -> set[Any] | None:
    if "const" in schema:
        return {schema["const"]}
    return set(schema["enum"]) if "enum" in schema else None


def _bounds(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    problems = []
    for name in LOWER_BOUNDS:
        if name in new and (name not in old or new[name] > old[name]):
            problems.append(f"{path}: {name} tightened to {new[name]}")
    for name in UPPER_BOUNDS:
        if name in new and (name not in old or new[name] < old[name]):
            problems.append(f"{path}: {name} tightened to {new[name]}")
    for name in ("pattern", "format"):
        if name in new and name in old and new[name] != old[name]:
            problems.append(f"{path}: {name} changed")
    return problems
