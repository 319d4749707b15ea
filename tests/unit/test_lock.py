"""The lock files pin every dependency pyproject.toml names, within its bounds: `make`
installs from them, so a bound raised without `make lock` fails here, not on a user."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (REPO / lock).read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==", 1)
            found[canonicalize_name(name.split("[")[0])] = version.strip()
    return found


@pytest.mark.parametrize(("lock", "groups"), [("requirements.lock", ("runtime",)),
                                              ("requirements-dev.lock", ("runtime", "dev"))])
def test_every_dependency_is_pinned_within_its_bounds(lock: str,
                                                      groups: tuple[str, ...]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {"runtime": project["dependencies"],
              "dev": project["optional-dependencies"]["dev"]}
    pinned = pins(lock)
    for group in groups:
        for line in wanted[group]:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{lock} lacks {name}: run make lock"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{lock} pins {name}=={pinned[name]}, outside {requirement.specifier}")
