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


def imports_of(path: Path, lazy: bool = False) -> set[str]:
    """Modules imported at module level, and with ``lazy`` also those imported inside functions
    (lazy imports keep start-up fast but are dependencies all the same)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks are not imports at run time
            continue
        nodes = list(ast.walk(node)) if lazy else [node]
        for item in nodes:
            if isinstance(item, ast.Import):
                found.update(alias.name for alias in item.names)
            elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
                found.add(item.module)
                found.update(f"{item.module}.{alias.name}" for alias in item.names)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def internal_graph(lazy: bool = True) -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        graph[name] = {m for m in imports_of(path, lazy) if m in MODULES and m != name}
    return graph


def test_no_import_circles() -> None:
    """No circle among giugan's modules, imports inside functions included."""
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


# ------------------------------------------------------------------ private members of libraries
#: The libraries whose private members giugan may use only through ``giugan/compat.py``'s tables.
LIBRARIES = ("lightning", "torchmetrics", "torch_fidelity", "jsonargparse", "wandb")


def _library_private_names() -> set[str]:
    """Private names the libraries' sources define, assign or spell as strings."""
    import importlib
    import re

    pattern = re.compile(r"def (_\w+)|self\.(_\w+)\s*[:=]|^\s*(_\w+)\s*[:=]|[\"'](_\w+)[\"']", re.MULTILINE)
    names: set[str] = set()
    for library in LIBRARIES:
        folder = Path(importlib.import_module(library).__file__).parent
        for path in folder.rglob("*.py"):
            names.update(n for groups in pattern.findall(path.read_text(errors="ignore")) for n in groups if n)
    return names


def _library_members_of(cls: type) -> set[str]:
    """Names the library classes among ``cls``'s bases define or assign."""
    from giugan import compat

    names: set[str] = set()
    for klass in cls.__mro__[1:]:
        if klass.__module__.split(".")[0] in LIBRARIES:
            names |= set(vars(klass)) | compat._instance_attributes(klass)
    return names


#: Underscore names that are public API of the standard library (named tuples, ``os._exit``).
PUBLIC_UNDERSCORE_NAMES = {"_fields", "_asdict", "_replace", "_make", "_field_defaults", "_exit"}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORE_NAMES


def library_private_uses() -> dict[str, set[str]]:
    """Private names of the libraries that giugan uses outside ``compat.py``: name -> modules.

    * ``self._x`` in a giugan class whose library base class defines or assigns ``_x``;
    * ``obj._x`` / ``getattr(obj, "_x")`` on another object, or a ``"_x"`` dictionary key, where
      ``_x`` is no name of giugan's own and the libraries' sources define or assign it;
    * a private name imported from a library module.
    """
    import importlib
    import re

    own: set[str] = set()
    trees = {name: ast.parse(path.read_text()) for name, path in MODULES.items() if name != "giugan.compat"}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
    library_names = _library_private_names()
    found: dict[str, set[str]] = {}
    for module, tree in trees.items():
        library_members: dict[int, set[str]] = {}  # id of a ClassDef node -> its library members
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.bases:
                cls = getattr(importlib.import_module(module), node.name, None)
                if isinstance(cls, type):
                    library_members[id(node)] = _library_members_of(cls)
                    for inner in ast.walk(node):
                        if (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name)
                                and inner.value.id == "self" and _is_private(inner.attr)):
                            if inner.attr in library_members[id(node)]:
                                found.setdefault(inner.attr, set()).add(module)
                            elif isinstance(inner.ctx, ast.Store):
                                own.add(inner.attr)
    for module, tree in trees.items():
        other_modules = {"self", "cls"} | _aliases_of_other_modules(tree)
        for node in ast.walk(tree):
            candidates = []
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                if not (isinstance(node.value, ast.Name) and node.value.id in other_modules):
                    candidates.append(node.attr)
            elif isinstance(node, (ast.Call, ast.Subscript, ast.Compare)):
                candidates += [key for key in _string_keys(node) if re.fullmatch(r"_[a-z]\w*", key)]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
                found.update({a.name: {module} for a in node.names if _is_private(a.name)})
            for name in candidates:
                if name not in own and name in library_names:
                    found.setdefault(name, set()).add(module)
    return found


def _aliases_of_other_modules(tree: ast.Module) -> set[str]:
    """Names bound to modules outside :data:`LIBRARIES` (``os``, ``torch``, ``nn``, ...)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names
                      if a.name.split(".")[0] not in LIBRARIES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] not in LIBRARIES:
            names |= {a.asname or a.name for a in node.names}
    return names


def _string_keys(node: ast.AST) -> list[str]:
    """Strings used as attribute names or keys: ``getattr(x, "k")``, ``d.pop("k")``, ``d["k"]``,
    ``"k" in d``."""
    if isinstance(node, ast.Subscript):
        key = node.slice
    elif isinstance(node, ast.Compare):
        key = node.left
    elif isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) > 1:
        key = node.args[1]
    elif isinstance(node.func, ast.Attribute) and node.func.attr in ("pop", "get", "setdefault") and node.args:
        key = node.args[0]
    else:
        return []
    return [key.value] if isinstance(key, ast.Constant) and isinstance(key.value, str) else []


def test_private_members_of_libraries_are_listed_in_compat() -> None:
    """Every private member of Lightning, torchmetrics, torch-fidelity, jsonargparse or wandb that
    giugan uses is in ``compat.py``'s tables, which tests/test_compat.py checks on the pinned
    versions (or it is used inside ``compat.py`` itself)."""
    from giugan import compat

    listed = {member for *_, member in compat.LIGHTNING_PRIVATE_MEMBERS + compat.OTHER_PRIVATE_MEMBERS}
    listed |= {key for _, key in compat.LIGHTNING_PRIVATE_HPARAM_KEYS}
    unlisted = {name: sorted(modules) for name, modules in library_private_uses().items() if name not in listed}
    assert unlisted == {}


def test_the_private_member_tables_hold_on_the_pinned_versions() -> None:
    from giugan import compat

    assert compat.missing_private_members() == []
