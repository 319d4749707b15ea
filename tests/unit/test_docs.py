"""The documentation builds strictly (every link and anchor resolves), and the README
stays a landing page that opens with the two commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site/runbook/index.html").exists()


def test_the_readme_is_a_landing_page_opening_with_the_two_commands() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) < 250
    block = lines[lines.index("```bash") + 1:lines.index("```")]
    assert [line.split()[:2] for line in block] == [["make", "demo"], ["make", "test"]]
    linked = {page.name for page in (REPO / "docs").glob("*.md")} - {"index.md"}
    text = "\n".join(lines)
    assert all(f"docs/{name}" in text for name in linked), "every docs page linked"


def test_the_module_table_is_the_tree_s() -> None:
    """``docs/design.md``'s module table is made from the docstrings; regenerate it with
    ``python -m tests.module_table --write``."""
    from tests import module_table

    assert module_table.on_page(module_table.PAGE.read_text()) == module_table.table()
