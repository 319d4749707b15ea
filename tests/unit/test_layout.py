"""The package's layout holds: who may import whom, no import circles, only the worker
imports Faust, development tools only lazily, no module over 400 lines."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "stream_app"
MAX_LINES = 400

# part -> the parts it may import from (besides itself and the top-level modules)
MAY_IMPORT = {
    "observe": set(),
    "core": {"observe"},
    "worker": {"core", "observe"},
    "api": {"core", "observe"},
    "dev": {"core", "observe", "api", "worker"},
}
TOP_LEVEL_MAY_IMPORT = {"settings": {"observe"}, "loops": set(), "ports": set(),
                        "arguments": {"core", "dev"}, "__init__": set(),
                        "__main__": set(), "report": {"core", "api"},
                        "cli": {"core", "api", "worker", "dev", "observe"}}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, top_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_only else list(ast.walk(tree))
    if top_only:  # also imports under `if TYPE_CHECKING:` are not real ones: skip ifs
        nodes = [n for n in nodes if isinstance(n, ast.Import | ast.ImportFrom)]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else parts[-1]


def test_parts_import_only_what_they_may() -> None:
    mods = modules()
    for name, path in mods.items():
        if name == "stream_app":
            continue
        part = part_of(name)
        allowed = MAY_IMPORT.get(part, TOP_LEVEL_MAY_IMPORT.get(part))
        assert allowed is not None, f"{name}: a part the layout does not know"
        for target in imports(path, top_only=False):
            if target in mods and target.startswith("stream_app.") and target != "stream_app":
                other = part_of(target)
                if other in MAY_IMPORT and other != part:
                    assert other in allowed, f"{name} imports {target}"


def test_only_the_worker_imports_faust() -> None:
    for name, path in modules().items():
        if any(t == "faust" or t.startswith("faust.") for t in imports(path, top_only=False)):
            assert name.startswith("stream_app.worker") or name == "stream_app.dev.bench.bare", \
                name


def test_no_import_circles_at_module_level() -> None:
    mods = modules()
    graph = {name: {t for t in imports(path, top_only=True) if t in mods and t != name}
             for name, path in mods.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        raise AssertionError(f"import circle: {cycle.args[1]}") from None


def test_the_cli_and_the_runtime_import_development_tools_only_lazily() -> None:
    for name, path in modules().items():
        if name.startswith("stream_app.dev"):
            continue
        top = imports(path, top_only=True)
        assert not any(t.startswith("stream_app.dev") for t in top), name


def test_no_module_over_400_lines() -> None:
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
