"""Imports flow one way, and nothing imports in a circle.

Floors, lowest first (docs/architecture.md draws them): models (and the errors and redaction
everyone uses) → config/settings/values/shipped/textrules/media → storage/composer/platforms → dispatch,
planner, importer, alerts, unsent → actions → jobs → service, views, demo → cli, web, jobs_info.
A module may import its own floor or a lower one. Every import (top level, inside a function
or under ``TYPE_CHECKING``) is read with ``ast``; a lower module importing an upper one fails
the test, and so does any cycle between modules or between packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: The floors, lowest first; a module's floor is that of its longest listed prefix.
FLOORS: tuple[tuple[str, ...], ...] = (
    # the words (tables, enums) and what every module may use; none imports another floor
    ("scheduler.errors", "scheduler.redact", "scheduler.models", "scheduler.dbtime", "scheduler.rows", "scheduler.states",
     "scheduler.tables"),
    (("scheduler.config", "scheduler.shipped", "scheduler.textrules", "scheduler.media", "scheduler.values", "scheduler.utm",
     "scheduler.settings_casts", "scheduler.settings_table", "scheduler.logs", "scheduler.process")),
    ("scheduler.storage", "scheduler.composer", "scheduler.platforms", "scheduler.httpclient"),
    ("scheduler.dispatch", "scheduler.planner", "scheduler.importer", "scheduler.import_rows", "scheduler.import_table", "scheduler.alerts", "scheduler.unsent",
     "scheduler.retry", "scheduler.budget", "scheduler.views", "scheduler.history_read", "scheduler.leases", "scheduler.metrics",
     "scheduler.reports", "scheduler.fitting", "scheduler.downloads", "scheduler.post_images",
     "scheduler.mediaprune"),
    # what people do (queue, approve, cancel, import, channels, users): one function each, CLI and web alike
    ("scheduler.actions",),
    # scheduled job functions: plain arguments, never the service
    ("jobs",),
    # the service declares and runs the jobs; the highlight read models use the job's pick
    ("scheduler.service", "scheduler.highlight_views", "scheduler.demo"),
    # the two front doors
    ("scheduler.cli", "scheduler.web", "scheduler.jobs_info"),
)
LAYERS: dict[str, int] = {prefix: n for n, floor in enumerate(FLOORS) for prefix in floor}
#: The package's own ``__init__`` (``__version__`` only) sits under everything.
ROOT = "scheduler"
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
    if module == ROOT:
        return -1
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


def import_graph(sources: Mapping[str, tuple[str, bool]], unit: int | None = None) -> dict[str, set[str]]:
    """Who imports whom, from ``{module: (source, is_package)}``.

    An imported name that is not a module (``from scheduler import __version__``) counts as its
    module. With ``unit=2`` every module stands for its package (``scheduler.storage.posts`` →
    ``scheduler.storage``, ``jobs.highlight.pick`` → ``jobs.highlight``); imports inside one unit
    are left out.
    """
    def resolve(name: str) -> str:
        while name and name not in sources:
            name = name.rpartition(".")[0]
        return name

    def shorten(name: str) -> str:
        return ".".join(name.split(".")[:unit]) if unit else name

    graph: dict[str, set[str]] = {shorten(m): set() for m in sources}
    for me, (source, is_package) in sources.items():
        for _line, name in imports_in(source, me, is_package):
            target = resolve(name)
            if target and shorten(target) != shorten(me):
                graph[shorten(me)].add(shorten(target))
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle as a path (``[a, b, a]``), or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


SOURCES = sorted(p for d in ("scheduler", "jobs") for p in (REPO / d).rglob("*.py"))
REAL = {module_name(p): (p.read_text(encoding="utf-8"), p.name == "__init__.py") for p in SOURCES}


def test_every_module_has_a_layer() -> None:
    unplaced = [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None]
    assert not unplaced, f"add these to FLOORS in tests/test_layers.py: {unplaced}"


def test_the_floors_are_the_design_order() -> None:
    floor = {name: layer_of(name) for name in ("scheduler.models", "scheduler.storage", "scheduler.dispatch",
                                               "jobs", "scheduler.service", "scheduler.cli", "scheduler.web")}
    assert floor["scheduler.models"] < floor["scheduler.storage"] < floor["scheduler.dispatch"]  # type: ignore[operator]
    assert floor["scheduler.dispatch"] < floor["jobs"] < floor["scheduler.service"]  # type: ignore[operator]
    assert floor["scheduler.service"] < floor["scheduler.cli"] == floor["scheduler.web"]  # type: ignore[operator]


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


@pytest.mark.parametrize("unit", [None, 2], ids=["modules", "packages"])
def test_no_import_cycle(unit: int | None) -> None:
    cycle = find_cycle(import_graph(REAL, unit))
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_checker_sees_function_level_and_relative_imports() -> None:
    source = "def f():\n    from scheduler.storage import posts\n    from .. import cli\n"
    found = [t for _, t in imports_in(source, "scheduler.platforms.probe")]
    assert "scheduler.storage.posts" in found and "scheduler.cli" in found
    assert layer_of("scheduler.cli") > layer_of("scheduler.platforms.probe")  # type: ignore[operator]


def test_the_checker_finds_a_planted_cycle() -> None:
    # A job that reaches back into the service (even only for a type) closes a circle.
    fake = {
        "scheduler.service": ("from jobs.tick import tick\n", False),
        "jobs": ("", True),
        "jobs.tick": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from scheduler.service import Service\n", False),
        "scheduler.storage": ("", True),
        "scheduler.storage.posts": ("from scheduler import __version__\n", False),
        "scheduler": ("", True),
    }
    assert find_cycle(import_graph(fake)) == ["jobs.tick", "scheduler.service", "jobs.tick"]
    assert find_cycle(import_graph(fake, 2)) == ["jobs.tick", "scheduler.service", "jobs.tick"]
    assert layer_of("jobs.tick") < layer_of("scheduler.service")  # type: ignore[operator]  # so it is upward too

    del fake["jobs.tick"]
    assert find_cycle(import_graph(fake)) is None
    # Between packages: each module on its own is fine, the packages import each other.
    split = {"scheduler.a": ("", True), "scheduler.a.x": ("from scheduler.b import y\n", False),
             "scheduler.a.z": ("", False), "scheduler.b": ("", True),
             "scheduler.b.w": ("from scheduler.a import z\n", False), "scheduler.b.y": ("", False)}
    assert find_cycle(import_graph(split)) is None
    assert find_cycle(import_graph(split, 2)) == ["scheduler.a", "scheduler.b", "scheduler.a"]


def test_actions_sit_between_dispatch_and_jobs_and_cli_on_top() -> None:
    assert layer_of("scheduler.dispatch") < layer_of("scheduler.actions.posts") < layer_of("jobs.dispatch")  # type: ignore[operator]
    assert layer_of("scheduler.service") < layer_of("scheduler.cli.posts")  # type: ignore[operator]
    assert layer_of("scheduler.actions") < layer_of("scheduler.web")  # type: ignore[operator]
