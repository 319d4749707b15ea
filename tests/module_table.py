"""The module table of ``docs/design.md``, made from the tree's docstrings so it cannot
drift: a row per module, its path and the first sentence of its docstring.

``python -m tests.module_table`` prints it; ``--write`` puts it between the markers of
``docs/design.md``. ``tests/unit/test_docs.py`` fails when the page's table is not the
tree's.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stream_app"
PAGE = ROOT / "docs" / "design.md"
START, END = "<!-- modules:start -->", "<!-- modules:end -->"


def first_sentence(docstring: str) -> str:
    paragraph = " ".join(docstring.split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return (match.group(1) if match else paragraph).replace("|", "\\|")


def rows() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py"), key=lambda p: (p.parent.parts, p.name)):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        relative = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py":
            relative = path.parent.relative_to(ROOT).as_posix() + "/"
            out.append(f"| **`{relative}`** | **{first_sentence(doc)}** |")
        else:
            out.append(f"| `{relative}` | {first_sentence(doc)} |")
    return out


def table() -> str:
    return "\n".join(["| module | holds |", "|---|---|", *rows()])


def on_page(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update docs/design.md")
    if parser.parse_args().write:
        text = PAGE.read_text()
        before, rest = text.split(START, 1)
        PAGE.write_text(f"{before}{START}\n{table()}\n{END}{rest.split(END, 1)[1]}")
    else:
        print(table())


if __name__ == "__main__":
    main()
