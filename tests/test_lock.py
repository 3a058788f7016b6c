"""The lock files name every package pyproject.toml asks for, so `make test` installs what the
code needs (a dependency added to pyproject.toml without `make lock` fails here, not in CI)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def locked(name: str) -> set[str]:
    lines = (REPO / "requirements" / name).read_text().splitlines()
    return {re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-")
            for line in lines if line and not line.startswith((" ", "#", "-"))}


def wanted(specs: list[str]) -> set[str]:
    return {re.split(r"[=<>\[ ;~!]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


def test_every_dependency_is_in_the_locks() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = wanted(project["dependencies"])
    assert runtime - locked("run.txt") == set()
    assert (runtime | wanted(project["optional-dependencies"]["test"])) - locked("test.txt") == set()


def test_lint_and_type_tools_are_pinned_exactly() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    for tool in ("ruff", "mypy"):
        assert any(re.fullmatch(rf"{tool}==[\d.]+", spec) for spec in extras), tool
