"""The public surface is small and explicit: every public module's ``__all__`` is pinned in
``tests/public_surface.json`` (module -> sorted names), so that growing or shrinking the API is a
visible, reviewed change (httpx and sigstore-python do the same). Internal modules start with
``_`` and are not listed. The import direction (the library never imports the CLI or the
registry, and no import cycle) is checked here too.

After an intended change of the surface, rewrite the pins and review the diff::

    python -m tests.test_public_surface --update
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

import pytest

import cortex_trust

PINS = Path(__file__).with_name("public_surface.json")
UPDATE = "python -m tests.test_public_surface --update"
#: Public modules outside the library whose surface is pinned as well.
OTHER_PUBLIC = ("registry",)


def _pinned() -> dict[str, list[str]]:
    pins: dict[str, list[str]] = json.loads(PINS.read_text(encoding="utf-8"))
    return pins


def _public_modules() -> set[str]:
    """Every module of the library without a ``_`` in its dotted name, and OTHER_PUBLIC."""
    found = {
        m.name
        for m in pkgutil.walk_packages(cortex_trust.__path__, "cortex_trust.")
        if not any(part.startswith("_") for part in m.name.split("."))
    }
    return found | {"cortex_trust", *OTHER_PUBLIC}


def _surface(module: str) -> list[str]:
    return sorted(importlib.import_module(module).__all__)


@pytest.mark.parametrize("module", sorted(_pinned()))
def test_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    pinned, actual = _pinned()[module], _surface(module)
    added, removed = sorted(set(actual) - set(pinned)), sorted(set(pinned) - set(actual))
    assert actual == pinned, (f"the public surface of {module} changed (added {added}, removed "
                              f"{removed}); if that is intended, run `{UPDATE}` and commit "
                              f"{PINS.name}")
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which does not exist"


def test_every_public_module_is_pinned() -> None:
    missing = _public_modules() - set(_pinned())
    assert missing == set(), (f"new public modules {sorted(missing)}: make them internal (a `_` "
                              f"name) or pin their __all__ with `{UPDATE}`")


def test_the_library_never_imports_the_cli_or_the_registry() -> None:
    import ast
    from pathlib import Path

    root = Path(cortex_trust.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for n in names:
                assert n.split(".")[0] not in {"cli", "registry"}, f"{path} imports {n}"


def _import_graph() -> dict[str, set[str]]:
    """Module -> internal modules it imports (top level and inside functions; ``TYPE_CHECKING``
    imports are left out: they never run)."""
    import ast
    from pathlib import Path

    repo = Path(cortex_trust.__file__).parent.parent
    modules: dict[str, Path] = {}
    for package in ("cortex_trust", "cli", "registry"):
        for path in (repo / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(repo).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(mod: str, node: ast.Import | ast.ImportFrom, is_pkg: bool) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if node.level:
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        return [f"{name}.{a.name}" if f"{name}.{a.name}" in modules else name for a in node.names]

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        def walk(node: ast.AST, mod: str = mod, path: Path = path) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for t in targets(mod, child, path.name == "__init__.py"):
                        if t in modules and t != mod:
                            graph[mod].add(t)
                else:
                    walk(child)

        walk(ast.parse(path.read_text(encoding="utf-8")))
    return graph


def test_imports_have_no_cycle() -> None:
    """Imports flow one way: no two modules import each other, even lazily (Tarjan's SCC)."""
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def main(argv: list[str]) -> int:
    """``--update``: write the current ``__all__`` of every public module to the pins."""
    if argv != ["--update"]:
        print(f"usage: {UPDATE}", file=sys.stderr)
        return 2
    pins = {m: _surface(m) for m in sorted(_public_modules())}
    PINS.write_text(json.dumps(pins, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {PINS} ({len(pins)} modules); review the diff before committing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
