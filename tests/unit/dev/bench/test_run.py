"""``stream-app bench --code DIR``: the children run the code at DIR (an A/B in one sitting)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream_app.dev.bench.run import BenchError, children_run


def test_the_children_import_stream_app_from_the_other_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "stream_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("print(__file__)\n")
    monkeypatch.chdir(Path(__file__).parents[4])  # the checkout: `-m` would find it first
    monkeypatch.setenv("PYTHONPATH", "")  # restored after the test, as the directory is
    children_run(str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "stream_app"], capture_output=True,
                         text=True, check=True).stdout
    assert Path(out.strip()).resolve() == (package / "__main__.py").resolve()


def test_without_code_nothing_changes_and_a_tree_without_the_package_is_one_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    here = Path.cwd()
    children_run(None)
    assert Path.cwd() == here and "PYTHONPATH" not in os.environ
    with pytest.raises(BenchError, match="no stream_app package there"):
        children_run(str(tmp_path))
