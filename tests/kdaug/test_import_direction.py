"""The shape of the code: every import points one way and no modules import each other in a ring.

Layers, bottom to top: the `kdaug` core; `augment` and `distill` on the core; `service` on the core
and `augment`; `kdaug.cli`, the entry point, on all of them. Every import statement counts, the
ones inside functions too (a lazy import is still a dependency), so the walk is over the whole
syntax tree of each module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kdaug", "augment", "distill", "service")

# What each part may import among the product's own packages (besides itself).
ALLOWED = {
    "kdaug": set(),
    "augment": {"kdaug"},
    "distill": {"kdaug"},
    "service": {"kdaug", "augment"},
    "kdaug.cli": {"kdaug", "augment", "distill", "service"},
}


def _part(module: str) -> str:
    return "kdaug.cli" if module.startswith("kdaug.cli") else module.split(".")[0]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours that `import name` loads (a package's __init__ for an attribute)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the submodule when there is one.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            resolved = _resolve(target)
            if resolved and resolved != module:
                out.add(resolved)
    return out


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_the_walk_sees_the_packages():
    assert {"kdaug", "kdaug.cli", "augment", "distill", "service"} <= set(MODULES)
    assert "kdaug.errors" in GRAPH["kdaug.cli"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    part = _part(module)
    upward = sorted(
        target
        for target in GRAPH[module]
        if _part(target) != part and _part(target) not in ALLOWED[part]
    )
    assert not upward, f"{module} ({part}) imports {upward}; {part} may import {ALLOWED[part]}"


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def _is_package_facade(edge_from: str, edge_to: str) -> bool:
    # A package's __init__ re-exporting its own submodules is not a ring: the submodule imports
    # the package only because Python loads parents first.
    return edge_to.startswith(edge_from + ".")


def test_no_import_rings():
    rings = []
    for component in _cycles():
        members = set(component)
        edges = [
            (a, b)
            for a in component
            for b in GRAPH[a]
            if b in members and not _is_package_facade(a, b)
        ]
        # Drop the façade edges and see whether a ring remains.
        sub = {a: {b for x, b in edges if x == a} for a in component}
        seen_ring = any(_reaches(sub, b, a) for a, b in edges)
        if seen_ring:
            rings.append(component)
    assert not rings, f"modules that import each other: {rings}"


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    todo, seen = [start], set()
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node in seen:
            continue
        seen.add(node)
        todo.extend(graph.get(node, ()))
    return False


def test_the_check_catches_an_upward_import(tmp_path):
    """The walk is not blind: an upward import written into a core module is seen."""
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from augment.augmenter import Augmenter\n", encoding="utf-8")
    assert "augment.augmenter" in _imports("kdaug.fake", fake)
