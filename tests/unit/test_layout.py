"""The package's layout holds: who may import whom, no import circles, only the worker
imports Faust, development tools only lazily, no module over 400 lines."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "stream_app"
MAX_LINES = 400

CORE = {"domain", "store", "kafka", "pipeline", "ops"}
"""The core by what it touches: the pure domain; Redis; Kafka; the processing steps that
use both; the operator commands."""
PURE = {"stream_app.core.domain"}
"""No I/O library and no clock-reading effect below these."""

# unit -> the units it may import from (besides itself). A unit is a top-level module, a
# part (``api``, ``dev``…), a part of the core (``core.domain``…, ``core.outages``) or
# ``worker.patches``. Every import counts, also one inside a function.
MAY_IMPORT: dict[str, set[str]] = {
    "__init__": set(), "loops": set(), "ports": set(), "patching": set(),
    "observe": set(),
    "settings": {"observe", "loops"},
    "core.domain": set(),
    "core.outages": {"observe"},
    "core.store": {"core.domain", "core.outages", "settings"},
    "core.kafka": {"core.domain", "core.outages", "observe", "settings"},
    "core.pipeline": {"core.domain", "core.outages", "core.store", "core.kafka", "observe",
                      "settings"},
    "core.ops": {"core.domain", "core.outages", "core.store", "core.kafka", "settings"},
    "worker.patches": {"patching", "core.domain", "observe"},
    "worker": {"core.domain", "core.outages", "core.store", "core.kafka", "core.pipeline",
               "worker.patches", "patching", "observe", "settings", "loops"},
    "api": {"core.domain", "core.outages", "core.store", "patching", "observe", "settings",
            "loops"},
    "terminal": {"api", "core.store", "settings"},
    "arguments": {"core.domain", "dev"},
    "cli": {"api", "arguments", "core.outages", "core.ops", "core.store", "dev", "observe",
            "ports", "settings", "terminal", "worker"},
    "dev": {"api", "core.domain", "core.kafka", "core.store", "core.outages", "loops",
            "ports", "settings", "terminal", "worker", "worker.patches", "observe"},
    "__main__": {"cli"},
}


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


def unit_of(module: str) -> str:
    parts = module.split(".")[1:] or ["__init__"]
    if parts[0] == "core" and len(parts) > 1:
        return f"core.{parts[1]}"
    if parts[:2] == ["worker", "patches"]:
        return "worker.patches"
    return parts[0]


def edges() -> dict[str, set[tuple[str, str]]]:
    """unit -> (module, imported module) of every import of another unit; a package's
    ``__init__`` imported only as a path to its modules does not count."""
    mods = modules()
    packages = {n for n, p in mods.items() if p.name == "__init__.py"}
    out: dict[str, set[tuple[str, str]]] = {}
    for name, path in mods.items():
        for target in imports(path, top_only=False):
            if target in mods and target not in packages and unit_of(target) != unit_of(name):
                out.setdefault(unit_of(name), set()).add((name, target))
    return out


def test_units_import_only_what_they_may() -> None:
    found = edges()
    assert set(found) <= set(MAY_IMPORT), "a unit the layout does not know"
    wrong = sorted(f"{m} imports {t}" for unit, pairs in found.items() for m, t in pairs
                   if unit_of(t) not in MAY_IMPORT[unit])
    assert wrong == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    lazy = tmp_path / "matching.py"
    lazy.write_text("def f():\n    from stream_app import cli\n    return cli\n")
    assert "stream_app.cli" in imports(lazy, top_only=False)
    assert unit_of("stream_app.cli") not in MAY_IMPORT[unit_of("stream_app.core.domain.m")]


def test_the_units_form_no_circle() -> None:
    graph = {unit: allowed - {unit} for unit, allowed in MAY_IMPORT.items()}
    tuple(graphlib.TopologicalSorter(graph).static_order())


def test_the_core_is_split_by_what_it_touches() -> None:
    assert {p.name for p in (PACKAGE / "core").iterdir() if p.is_dir()} - {"__pycache__"} \
        == CORE
    for name, path in modules().items():
        if any(name.startswith(p) for p in PURE):
            io = {t for t in imports(path, top_only=False)
                  if t.split(".")[0] in ("aiokafka", "redis", "faust", "aiohttp", "asyncio")}
            assert io == set(), f"{name} imports {io}"


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


def test_no_module_imports_another_s_private_names() -> None:
    private = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stream_app"):
                private += [f"{name}: {a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []


def test_the_worker_s_functions_are_short_and_simple() -> None:
    """Faust glue a reader sees whole: no function over 40 lines or of a McCabe
    complexity over 10 in ``worker/`` (the topology is declared in ``topology.py``)."""
    import subprocess
    import sys

    long = []
    for name, path in modules().items():
        if name.startswith("stream_app.worker"):
            long += [f"{name}.{n.name}: {n.end_lineno - n.lineno + 1} lines"  # type: ignore[operator]
                     for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and n.end_lineno - n.lineno + 1 > 40]  # type: ignore[operator]
    assert long == []
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "C901", "--config",
         "lint.mccabe.max-complexity=10", str(PACKAGE / "worker")],
        capture_output=True, text=True, check=False)
    assert ruff.returncode == 0, ruff.stdout


TESTED_ELSEWHERE = {
    "api/live.py": "needs a reader and Redis: tests/integration/test_live_ops.py",
    "api/openapi.py": "checked against every answer: test_reader_schema.py, test_api_docs.py",
    "cli.py": "every command run as a process: tests/integration/test_cli.py",
    "core/domain/partitions.py": "a Protocol and the unit tests' all-in-one double",
    "core/ops/tail.py": "needs Kafka: tests/integration/test_subscribing.py",
    "core/store/counters.py": "needs Redis: test_counters.py, test_scripts.py (integration)",
    "core/store/client.py": "needs Redis (and a Cluster): test_counters.py, test_replicas.py",
    "core/store/migration.py": "needs Redis: tests/integration/test_layout_migration.py",
    "dev/bench/bare.py": "the bench on a small workload: tests/integration/test_bench.py",
    "dev/bench/baselines.py": "tests/integration/test_bench.py",
    "dev/bench/config.py": "tests/integration/test_bench.py",
    "dev/bench/failover.py": "tests/integration/test_bench.py",
    "dev/bench/live_streams.py": "tests/integration/test_bench.py",
    "dev/bench/reader_load.py": "tests/integration/test_bench.py",
    "dev/bench/summary.py": "tests/integration/test_bench.py",
    "dev/bench/worker.py": "tests/integration/test_bench.py",
    "dev/bench/workload.py": "tests/integration/test_bench.py",
    "dev/demo.py": "the README's first command: test_readme.py, test_wheel.py",
    "dev/simulate.py": "the traffic of every end-to-end test, checked by its oracle",
    "dev/truth.py": "the oracle of the end-to-end tests (against tests/oracles.py there)",
    "loops.py": "one choice of event loop, used by every process the integration tests run",
    "terminal.py": "stats and explain run as commands: tests/integration/test_cli.py",
    "worker/app.py": "builds the Faust app: every integration test with a worker",
    "worker/patches/seeks.py": "tests/unit/worker/patches/test_seek_on_assignment.py",
    "worker/run.py": "starts the worker: every integration test with a worker",
    "worker/topology.py": "wires Faust: every integration test with a worker",
}
"""Modules without a unit test file of their own, and where they are tested instead."""


def test_tests_mirror_the_package() -> None:
    """``stream_app/<path>/<m>.py`` has ``tests/unit/<path>/test_<m>.py``, or a reason
    above; a reason for a module that has one (or is gone) is stale."""
    tests = PACKAGE.parent / "tests" / "unit"
    missing, stale = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name.startswith("__"):
            continue
        relative = path.relative_to(PACKAGE)
        has = (tests / relative.parent / f"test_{path.stem}.py").exists()
        if not has and relative.as_posix() not in TESTED_ELSEWHERE:
            missing.append(relative.as_posix())
        if has and relative.as_posix() in TESTED_ELSEWHERE:
            stale.append(relative.as_posix())
    gone = [m for m in TESTED_ELSEWHERE if not (PACKAGE / m).exists()]
    assert (missing, stale, gone) == ([], [], [])


REPOSITORY_CHECKS = {"test_docs.py", "test_layout.py", "test_lock.py", "test_deploy.py",
                     "test_faults_table.py", "api/test_api_docs.py"}
"""Unit test files of the repository's other files (docs, lock files, deploy files, the
fault matrix's report in ``benchmarks/faults.py``), not of a module."""


def test_every_unit_test_file_names_a_module() -> None:
    tests = PACKAGE.parent / "tests" / "unit"
    orphans = {p.relative_to(tests).as_posix() for p in tests.rglob("test_*.py")
               if not (PACKAGE / p.relative_to(tests).parent / f"{p.stem[5:]}.py").exists()}
    assert orphans == REPOSITORY_CHECKS
