"""The package's structure: the layer table of the README's layout holds, no import circles, no
module too large to hold in one's head."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "giugan"
MAX_LINES = 420  # "about 400"

#: What each layer may import (besides the standard library, torch, numpy, PIL).
FORBIDDEN = {
    "giugan.ops": ("lightning", "giugan.nets", "giugan.metrics", "giugan.data", "giugan.training", "giugan.cli"),
    "giugan.nets": ("lightning", "giugan.metrics", "giugan.data", "giugan.training", "giugan.cli", "giugan.losses"),
    "giugan.losses": ("lightning", "giugan.nets", "giugan.training"),
    "giugan.metrics": ("lightning", "giugan.nets", "giugan.training", "giugan.data", "giugan.cli"),
    "giugan.data": ("giugan.nets", "giugan.metrics", "giugan.training", "giugan.cli"),
    "giugan.training": ("giugan.cli",),
    "giugan.profiling": ("lightning", "giugan.training", "giugan.cli"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Modules imported at module level (imports inside functions are lazy, and allowed)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        nodes = [node]
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks are not imports at run time
            continue
        for item in nodes:
            if isinstance(item, ast.Import):
                found.update(alias.name for alias in item.names)
            elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
                found.add(item.module)
                found.update(f"{item.module}.{alias.name}" for alias in item.names)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def internal_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        graph[name] = {m for m in imports_of(path) if m in MODULES and m != name}
    return graph


def test_no_import_circles() -> None:
    graph = internal_graph()
    cycles = []

    def visit(node: str, stack: list[str], done: set[str]) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            # a package importing its own submodules (``__init__`` re-exports) is not a circle
            if node.startswith(nxt + ".") or nxt.startswith(node + ".") and MODULES[node].name == "__init__.py":
                continue
            visit(nxt, [*stack, node], done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        visit(start, [], done)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_layers_import_only_what_is_above_them() -> None:
    violations = []
    for name, path in MODULES.items():
        for layer, forbidden in FORBIDDEN.items():
            if name == layer or name.startswith(layer + "."):
                violations += [(name, m) for m in imports_of(path) if m.startswith(forbidden)]
    assert violations == []
