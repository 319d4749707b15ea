"""The Lua scripts: files of the package, linted, and building no key name."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from stream_app.core.store import scripts
from stream_app.dev.services import apt_install

PACKAGE = Path(scripts.__file__).resolve().parents[2]
KEY_FRAGMENTS = ("cbs", "stats:", "agent:", "call:", "config:", "version", "names", "changed")
"""Parts of the key layout (``layout.py``): a Lua string holding one would build a key."""


def test_every_script_is_a_file_of_the_package() -> None:
    assert {s.name for s in scripts.ALL} | {"batched"} \
        == {p.stem for p in (PACKAGE / "core/store/lua").glob("*.lua")}
    assert all(len(s.sha) == 40 for s in scripts.ALL)
    assert scripts.RECORD_INBOUND.source.startswith(
        (PACKAGE / "core/store/lua/batched.lua").read_text())


def test_no_python_module_holds_lua() -> None:
    held = [str(p) for p in PACKAGE.rglob("*.py") if "redis.call(" in p.read_text()]
    assert held == []


def test_no_script_builds_a_key_name() -> None:
    for script in scripts.ALL:
        code = "\n".join(line.split("--")[0] for line in script.source.splitlines())
        literals = re.findall(r"'([^']*)'", code)
        assert not [s for s in literals if any(k in s for k in KEY_FRAGMENTS)], script.name


def test_luacheck_finds_nothing(tmp_path: Path) -> None:
    """Each script as Redis runs it (the batched ones after their prelude)."""
    luacheck = shutil.which("luacheck") or apt_install("lua-check", "luacheck")
    for script in scripts.ALL:
        (tmp_path / f"{script.name}.lua").write_text(script.source)
    result = subprocess.run(
        [luacheck, "--std", "lua51", "--no-color", "--codes", "--read-globals", "redis",
         "cjson", "KEYS", "ARGV", "--", *sorted(map(str, tmp_path.glob("*.lua")))],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
