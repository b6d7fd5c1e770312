"""The folder tree is the architecture: imports only point down, no circles, small modules,
public faces that show the API and nothing else.

Every import in the package is read from the source (module level and inside functions;
``if TYPE_CHECKING:`` blocks are skipped, they never run).
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "annio"

# Lowest first. A module belongs to the longest prefix listed; it may import its own layer
# and any layer listed before it.
LAYERS: list[tuple[str, ...]] = [
    ("annio.settings", "annio.errors", "annio._version", "annio._exports"),
    ("annio._core",),
    ("annio._bridge",),
    ("annio.io._storage",),
    ("annio.io._encodings",),
    ("annio.io._root",),
    ("annio.io._backed",),
    ("annio.io._files", "annio.io._formats"),
    ("annio.io",),  # the face of the format
    ("annio._lazy",),
    ("annio._ops",),
    ("annio.aio", "annio.experimental", "annio.testing", "annio.datasets"),
    ("annio.cli",),
    ("annio",),  # the public face
]

PUBLIC_FACES = ["annio", "annio.io", "annio.experimental", "annio.aio"]
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _layer(module: str) -> int:
    best, best_len = None, -1
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported annio module, line, at module level) for every runtime import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit_stmt(sub, top)
                continue
            visit_stmt(child, top)

    def visit_stmt(child: ast.AST, top: bool) -> None:
        if isinstance(child, ast.Import):
            out.extend((a.name, child.lineno, top) for a in child.names if a.name.split(".")[0] == "annio")
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (child.level - 1)]
                target = ".".join(base + ([child.module] if child.module else []))
            else:
                target = child.module or ""
            if target.split(".")[0] != "annio":
                return
            for alias in child.names:
                full = f"{target}.{alias.name}"
                out.append((full if full in known else target, child.lineno, top))
        else:
            inner_top = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner_top)

    visit(tree, True)
    return out


MODULES = _modules()
GRAPH = {m: _imports(m, p, set(MODULES)) for m, p in MODULES.items()}


def test_every_module_sits_in_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_import_points_up() -> None:
    upward = []
    for module, imports in GRAPH.items():
        own = _layer(module)
        for target, line, _ in imports:
            if target == "annio" and module != "annio":
                upward.append(f"{module}:{line} imports the package face 'annio'")
            elif _layer(target) > own:
                upward.append(f"{module}:{line} imports {target} (layer {_layer(target)} > {own})")
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_no_import_circles_between_modules() -> None:
    # every runtime import counts, wherever it stands; a package's __init__ importing its
    # own submodules is how a face is assembled and is not an edge back from them
    edges: dict[str, set[str]] = {}
    for module, imports in GRAPH.items():
        for target, _, _ in imports:
            if target in MODULES and target != module and not module.startswith(target + "."):
                edges.setdefault(module, set()).add(target)
    cycle = _find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_check_sees_upward_and_circular_imports(tmp_path: Path) -> None:
    # the checker itself: a planted upward import and a planted circle are found
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from annio._lazy import read_lazy\n")
    found = _imports("annio._core.m", src, set(MODULES))
    assert any(_layer(t) > _layer("annio._core.m") for t, _, _ in found)
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}}) is None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small(module: str) -> None:
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (> {MAX_LINES}): split it along its seams"


@pytest.mark.parametrize("face", [f for f in PUBLIC_FACES if f in MODULES])
def test_public_faces_show_only_the_api(face: str) -> None:
    # in a fresh interpreter: what the face itself puts in its namespace (a subpackage that
    # some other code imports later, e.g. annio.cli, is bound by Python, not by the face)
    probe = (
        f"import importlib, json; m = importlib.import_module({face!r}); "
        "print(json.dumps([sorted(m.__all__), sorted(vars(m)), sorted(dir(m))]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    api, names, shown = (set(x) for x in json.loads(out))
    public = {n for n in names if not n.startswith("_")}
    assert public <= api, f"{face} shows names outside __all__: {sorted(public - api)}"
    shown = {n for n in shown if not n.startswith("__")}
    assert shown <= api, f"dir({face}) shows {sorted(shown - api)}"
    # names are imported on first access (PEP 562): dir() still lists the whole API
    assert shown == {n for n in api if not n.startswith("__")}, f"dir({face}) misses {sorted(api - shown)}"
    module = importlib.import_module(face)
    for name in api:
        assert getattr(module, name) is not None, f"{face}.{name} is in __all__ but missing"
