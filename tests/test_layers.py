"""Imports flow one way: models → storage/composer/platforms/textrules → dispatch/planner →
actions → jobs/service → cli/web; config, errors, redact and shipped are the base everyone may use.

Every import (top level or inside a function) is read with ``ast``; a lower module importing
an upper one fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Layer of each module (longest prefix wins); a module may import its own layer or lower.
LAYERS: dict[str, int] = {
    "scheduler.errors": 0, "scheduler.redact": 0, "scheduler.config": 0, "scheduler.shipped": 0,
    "scheduler.models": 1, "scheduler.textrules": 1, "scheduler.media": 1,
    "scheduler.storage": 2, "scheduler.composer": 2, "scheduler.platforms": 2, "scheduler.httpclient": 2,
    "scheduler.dispatch": 3, "scheduler.planner": 3, "scheduler.importer": 3, "scheduler.alerts": 3,
    "scheduler.views": 3,
    "scheduler.actions": 4,
    "jobs": 5, "scheduler.service": 5, "scheduler.jobs_info": 5, "scheduler.demo": 5,
    "scheduler.cli": 6, "scheduler.web": 5,
}
#: config checks channel options against the adapters' declared keys (a lookup of data,
#: through the registry) — the one sanctioned upward reach, kept to the registry module.
ALLOWED = {("scheduler.config", "scheduler.platforms")}
#: Beyond the layer order: pairs that must never import each other's side.
FORBIDDEN = {
    "scheduler.platforms": ("scheduler.storage", "scheduler.dispatch", "scheduler.cli", "scheduler.planner",
                            "scheduler.service", "scheduler.models"),
    "scheduler.storage": ("scheduler.dispatch", "scheduler.service", "scheduler.cli", "scheduler.planner",
                          "scheduler.composer"),
    "scheduler.composer": ("scheduler.storage", "scheduler.dispatch", "scheduler.platforms", "scheduler.planner"),
    "scheduler.textrules": ("scheduler.composer", "scheduler.platforms"),
    # Actions are what people do; they never reach for the scheduler or the front doors.
    "scheduler.actions": ("jobs", "scheduler.service", "scheduler.cli", "scheduler.web"),
}


def layer_of(module: str) -> int | None:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    return LAYERS[best] if best else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imports_in(source: str, me: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement, relative ones resolved."""
    tree = ast.parse(source)
    package = me if is_package else me.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((node.lineno, base))
            # `from scheduler import planner` imports scheduler.planner
            out.extend((node.lineno, f"{base}.{a.name}") for a in node.names)
    return [(line, m) for line, m in out if m.split(".")[0] in ("scheduler", "jobs")]


SOURCES = sorted(p for d in ("scheduler", "jobs") for p in (REPO / d).rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None and module_name(p) != "scheduler"]
    assert not unplaced, f"add these to LAYERS in tests/test_layers.py: {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_imports_point_down(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    if mine is None:
        return
    wrong = []
    for line, target in imports_of(path):
        theirs = layer_of(target)
        if theirs is None or theirs <= mine:
            continue
        if any(me.startswith(a) and target.startswith(b) for a, b in ALLOWED):
            continue
        wrong.append(f"line {line}: {target}")
    for prefix, banned in FORBIDDEN.items():
        if me == prefix or me.startswith(prefix + "."):
            wrong += [f"line {line}: {t}" for line, t in imports_of(path)
                      if any(t == b or t.startswith(b + ".") for b in banned)]
    assert not wrong, f"{me} imports upwards: {sorted(set(wrong))}"


def test_the_checker_sees_function_level_and_relative_imports() -> None:
    source = "def f():\n    from scheduler.storage import posts\n    from .. import cli\n"
    found = [t for _, t in imports_in(source, "scheduler.platforms.probe")]
    assert "scheduler.storage.posts" in found and "scheduler.cli" in found
    assert layer_of("scheduler.cli") > layer_of("scheduler.platforms.probe")  # type: ignore[operator]


def test_actions_sit_between_dispatch_and_jobs_and_cli_on_top() -> None:
    assert layer_of("scheduler.dispatch") < layer_of("scheduler.actions.posts") < layer_of("jobs.dispatch")  # type: ignore[operator]
    assert layer_of("scheduler.service") < layer_of("scheduler.cli.posts")  # type: ignore[operator]
    assert layer_of("scheduler.actions") < layer_of("scheduler.web")  # type: ignore[operator]
