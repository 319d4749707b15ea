"""The BACKWARD compatibility check: each incompatible change is caught, widening is not."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stream_app.core.domain.published import CLASSIFIED, STATS, schema_document
from stream_app.dev.schema_compat import breaks

OLD: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                   "kind": {"enum": ["a", "b"]}, "name": {"type": ["string", "null"]},
                   "rows": {"type": "array", "items": {
                       "type": "object", "properties": {"x": {"type": "string"}}}}},
    "required": ["id"],
}


def changed(edit: Any) -> dict[str, Any]:
    new = copy.deepcopy(OLD)
    edit(new)
    return new


@pytest.mark.parametrize(("edit", "why"), [
    (lambda s: s["properties"].pop("count"), "count: removed"),
    (lambda s: s["properties"].__setitem__("total", s["properties"].pop("count")),
     "count: removed"),
    (lambda s: s["properties"]["name"].__setitem__("type", "string"), "type narrowed"),
    (lambda s: s["properties"]["count"].__setitem__("minimum", 1), "minimum tightened"),
    (lambda s: s["properties"]["kind"].__setitem__("enum", ["a"]), "no longer allowed"),
    (lambda s: s["required"].append("name"), "name: newly required"),
    (lambda s: s["properties"]["rows"]["items"]["properties"].pop("x"), "rows[].x: removed"),
    (lambda s: s.__setitem__("additionalProperties", False), "closes the object"),
    (lambda s: s["properties"]["id"].__setitem__("pattern", "^x"), "adds 'pattern'"),
])
def test_an_incompatible_change_is_caught(edit: Any, why: str) -> None:
    problems = breaks(OLD, changed(edit))
    assert any(why in p for p in problems), problems


@pytest.mark.parametrize("edit", [
    lambda s: s["properties"].__setitem__("new", {"type": "string"}),
    lambda s: s["properties"]["count"].__setitem__("type", "number"),
    lambda s: s["properties"]["kind"]["enum"].append("c"),
    lambda s: s["properties"]["count"].pop("minimum"),
    lambda s: s["required"].clear(),
    lambda s: s.__setitem__("description", "says more"),
])
def test_a_widening_is_compatible(edit: Any) -> None:
    assert breaks(OLD, changed(edit)) == []


def test_a_broken_copy_of_a_real_schema_fails() -> None:
    """A field removed from the classified schema, one made narrower in the stats one."""
    classified = schema_document(CLASSIFIED)
    broken = copy.deepcopy(classified)
    del broken["properties"]["source_call_id"]
    assert breaks(classified, broken) == ["$.source_call_id: removed (or renamed)"]
    stats = schema_document(STATS)
    narrowed = copy.deepcopy(stats)
    narrowed["properties"]["callbacks_by_source_agent"]["items"]["properties"]["name"][
        "type"] = "string"
    assert breaks(stats, narrowed) == [
        "$.callbacks_by_source_agent[].name: type narrowed from ['null', 'string'] to "
        "['string']"]
