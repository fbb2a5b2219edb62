"""The shape of the package (docs/architecture.md), checked on the source text.

The import graph of ``lsegeo`` is built by parsing every module with :mod:`ast`: every ``import``
and ``from ... import`` at any depth (inside functions too), absolute or relative. An edge goes
to the deepest ``lsegeo`` module named (``from lsegeo.a import b`` is an edge to ``lsegeo.a.b``
when that is a module, else to ``lsegeo.a``). On that graph:

(a) no import cycles between modules;
(b) imports run one way, ``cli -> workflows -> {calibration, regionalize, products, sensitivity}
    -> {emulators, optimise, ensembles, models, metrics, ingest} -> base``, with ``io`` and
    ``plots`` leaves that import no step package; a module may import its own layer (siblings,
    e.g. ensembles -> metrics) and any layer below. ``<step>.settings`` modules (frozen
    dataclasses of defaults, read by ``config``) count as base; ``config`` (the YAML boundary,
    validated against the step registries) sits with ``workflows``. ``lsegeo.testing`` may use the
    library but nothing in the library imports it;
(c) only ``lsegeo/io/`` imports zarr;
(d) no module is over 600 lines unless its docstring says why ("over 600 lines because").
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lsegeo"
MAX_LINES = 600
LONG_MODULE_REASON = "over 600 lines because"

BASE = {"lsegeo", "__init__", "clusters", "design", "periods", "conventions", "errors", "registry", "provenance",
        "locations", "runtime", "parallel", "jobqueue", "data"}
LEAVES = {"io", "plots"}
#: layer of each top-level part of the package; a module may import its own layer and lower ones
LAYERS: dict[str, int] = {
    **{name: 0 for name in BASE},
    **{name: 1 for name in ("emulators", "optimise", "ensembles", "models", "metrics", "ingest")},
    **{name: 2 for name in ("calibration", "regionalize", "products", "sensitivity", "testing")},
    # the YAML boundary: it validates names against the step registries, and only workflows and
    # the CLI turn it into settings
    "config": 3,
    "workflows": 3,
    "cli": 4,
    "__main__": 4,
}
LAYER_NAMES = {0: "base", 1: "model/emulator steps", 2: "pipeline steps", 3: "workflows", 4: "cli"}


def module_name(path: Path) -> str:
    parts = ["lsegeo", *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "__pycache__" not in p.parts}


@functools.cache
def parsed(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _resolve(name: str, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from`` import (relative ones resolved against ``name``)."""
    if not node.level:
        return node.module or ""
    is_package = modules()[name].name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _deepest(target: str) -> str | None:
    """The deepest lsegeo module that ``target`` (a dotted name) is or lies in."""
    parts = target.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules():
            return candidate
        parts.pop()
    return None


@functools.cache
def imports_of(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(lsegeo modules, top-level third-party names) that module ``name`` imports, at any depth."""
    internal, external = set(), set()
    for node in ast.walk(parsed(name)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, node)
            targets = [f"{mod}.{alias.name}" if f"{mod}.{alias.name}" in modules() else mod for alias in node.names]
        for t in targets:
            if t == "lsegeo" or t.startswith("lsegeo."):
                dep = _deepest(t)
                if dep is not None and dep != name:
                    internal.add(dep)
            else:
                external.add(t.split(".")[0])
    return frozenset(internal), frozenset(external)


def graph() -> dict[str, set[str]]:
    return {m: set(imports_of(m)[0]) for m in modules()}


def part_of(name: str) -> str:
    """The top-level part of the package a module belongs to (``lsegeo.io.stores`` -> ``io``)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "lsegeo"


def is_settings(name: str) -> bool:
    last = name.split(".")[-1]
    return (last == "settings" or last.endswith("_settings")) and part_of(name) in LAYERS


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a closed path."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(_path_in(sorted(comp), g))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _path_in(comp: list[str], g: dict[str, set[str]]) -> list[str]:
    """A cycle through the first module of a strongly connected component (breadth-first)."""
    members, start = set(comp), comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(g[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


# ------------------------------------------------------------------------------------------------
# the checker itself
# ------------------------------------------------------------------------------------------------


def test_the_graph_sees_relative_and_function_level_imports():
    assert "lsegeo.registry" in modules()
    # registry imports errors at module level
    assert "lsegeo.errors" in imports_of("lsegeo.registry")[0]
    # relative imports resolve against the module's package (a package's __init__ is its own package)
    assert _resolve("lsegeo.io.stores", ast.ImportFrom(module="errors", names=[], level=2)) == "lsegeo.errors"
    assert _resolve("lsegeo.io.stores", ast.ImportFrom(module="camels", names=[], level=1)) == "lsegeo.io.camels"
    assert _resolve("lsegeo.io", ast.ImportFrom(module="stores", names=[], level=1)) == "lsegeo.io.stores"
    assert _resolve("lsegeo.io.stores", ast.ImportFrom(module=None, names=[], level=1)) == "lsegeo.io"
    # imports inside functions count (io.stores imports provenance inside stamp_provenance)
    lazy = [n for n in ast.walk(parsed("lsegeo.io.stores")) if isinstance(n, ast.FunctionDef)
            for i in ast.walk(n) if isinstance(i, (ast.Import, ast.ImportFrom))]
    assert lazy and "lsegeo.provenance" in imports_of("lsegeo.io.stores")[0]
    every = set().union(*(imports_of(m)[0] for m in modules()))
    assert len(every) > 10
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (cyc,) = cycles(toy)
    assert cyc[0] == cyc[-1] and set(cyc) == {"a", "b", "c"}
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_part_of_the_package_has_a_layer():
    unknown = sorted({part_of(m) for m in modules()} - set(LAYERS) - LEAVES)
    assert not unknown, f"put these parts of lsegeo into a layer of tests/test_architecture.py: {unknown}"


# ------------------------------------------------------------------------------------------------
# (a) - (d)
# ------------------------------------------------------------------------------------------------


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def _layer(name: str) -> int | None:
    if is_settings(name):
        return 0
    return LAYERS.get(part_of(name))


def test_imports_run_one_way():
    bad = []
    for m in sorted(modules()):
        src_part, src_layer = part_of(m), _layer(m)
        for dep in sorted(imports_of(m)[0]):
            dep_part, dep_layer = part_of(dep), _layer(dep)
            if dep_part == src_part:
                continue
            if dep_part == "testing":
                bad.append(f"{m} -> {dep}: the library must not import lsegeo.testing")
            elif src_part in LEAVES:
                if dep_part not in LEAVES and dep_layer != 0:
                    bad.append(f"{m} -> {dep}: {src_part} is a leaf; it may import only base modules and leaves")
            elif dep_part in LEAVES:
                continue
            elif src_layer is not None and dep_layer is not None and dep_layer > src_layer:
                bad.append(f"{m} ({LAYER_NAMES[src_layer]}) -> {dep} ({LAYER_NAMES[dep_layer]}): imports upwards")
    assert not bad, f"{len(bad)} imports against the layer direction:\n" + "\n".join(bad)


def test_only_io_imports_zarr():
    bad = sorted(m for m in modules() if "zarr" in imports_of(m)[1] and part_of(m) != "io")
    assert not bad, f"modules outside lsegeo/io/ that import zarr: {bad}"


def _docstring(name: str) -> str:
    return ast.get_docstring(parsed(name)) or ""


def test_no_module_is_too_long_without_a_reason():
    bad = []
    for m, path in sorted(modules().items()):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and LONG_MODULE_REASON not in " ".join(_docstring(m).split()):
            bad.append(f"{path.relative_to(ROOT.parent)}: {n} lines")
    assert not bad, (f"modules over {MAX_LINES} lines whose docstring does not say "
                     f"'{LONG_MODULE_REASON} ...':\n" + "\n".join(bad))


@pytest.mark.parametrize("part", sorted(LEAVES))
def test_leaves_import_no_step_package(part):
    steps = {p for p, layer in LAYERS.items() if layer > 0}
    bad = sorted(f"{m} -> {dep}" for m in modules() if part_of(m) == part
                 for dep in imports_of(m)[0] if part_of(dep) in steps and not is_settings(dep))
    assert not bad, f"lsegeo/{part}/ imports step packages: {bad}"
