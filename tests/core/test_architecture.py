"""The layering of optiplug's code, read from the source files (parsed, never imported).

What docs/architecture.md ("Which part may import which") says this test enforces:

- no import cycle among the modules of ``core/optiplug``, counting the imports made inside
  functions and leaving out those under ``if TYPE_CHECKING:``;
- every first-party plugin module imports from optiplug only its two public modules,
  ``optiplug`` (the user API) and ``optiplug.plugin`` (the plugin-author API), type-only
  imports included;
- only a dialect plugin imports that dialect (``optiplug_vissl``, ``optiplug_mmcv``,
  ``optiplug_mmengine``): an algorithm plugin never imports one;
- the core imports no plugin package;
- every package under ``plugins/`` is declared in ``[project.entry-points.optiplug]`` of
  pyproject.toml, and every entry point names a module of the repository.
"""

from __future__ import annotations

import ast
import itertools
import tomllib
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
PLUGINS = ROOT / "plugins"
PACKAGE = "optiplug"
PUBLIC = frozenset({"optiplug", "optiplug.plugin"})
PLUGIN_PREFIX = "optiplug_"
DIALECTS = frozenset({"optiplug_vissl", "optiplug_mmcv", "optiplug_mmengine"})


@attrs.frozen
class Import:
    """One import statement's target module, where it is written, and whether it only serves type checking."""

    target: str
    names: tuple[str, ...]
    file: Path
    line: int
    type_checking: bool

    def where(self, root: Path = ROOT) -> str:
        return f"{self.file.relative_to(root)}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """``core/optiplug/engine/build.py`` -> ``optiplug.engine.build``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` and ``if typing.TYPE_CHECKING:``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import in ``path``, at module level or inside functions and classes, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(node: ast.AST, guarded: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk_stmt(stmt, True)
                for stmt in child.orelse:
                    yield from walk_stmt(stmt, guarded)
            else:
                yield from walk_stmt(child, guarded)

    def walk_stmt(node: ast.AST, guarded: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), path, node.lineno, guarded)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield Import(target, tuple(a.name for a in node.names), path, node.lineno, guarded)
        yield from walk(node, guarded)

    yield from walk(tree, False)


def top_level(module: str) -> str:
    return module.partition(".")[0]


# --- (a) no import cycle in the core -------------------------------------------------


def core_modules() -> dict[str, Path]:
    return {module_name(p, CORE): p for p in python_files(CORE / PACKAGE)}


def import_graph() -> dict[str, dict[str, Import]]:
    """module -> {imported core module -> the first import statement making the edge}.

    ``from a.b import c`` is an edge to the module ``a.b.c`` when there is one, else to
    ``a.b`` (its ``__init__``). Parent packages imported implicitly are not edges: a
    package's ``__init__`` runs before its submodules anyway, only an explicit import of
    it makes a module depend on what it imports.
    """
    modules = core_modules()
    graph: dict[str, dict[str, Import]] = {m: {} for m in modules}
    for module, path in modules.items():
        for imp in imports_of(path, CORE):
            if imp.type_checking or top_level(imp.target) != PACKAGE:
                continue
            submodules = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in modules]
            attributes = len(submodules) < len(imp.names) or not imp.names
            for target in [*submodules, *([imp.target] if attributes else [])]:
                if target in modules:
                    graph[module].setdefault(target, imp)  # a module importing itself is a cycle too
    return graph


def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's components of more than one module, or of one module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # iterative, so a deep chain of imports cannot hit the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for succ in edges:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_through(graph: dict[str, dict[str, Import]], component: list[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself, staying in the component."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for succ in sorted(graph[node]):
            if succ not in members:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if succ not in previous:
                previous[succ] = node
                queue.append(succ)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def describe_cycle(graph: dict[str, dict[str, Import]], cycle: list[str]) -> str:
    steps = [f"{a} -> {b} ({graph[a][b].where()})" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n    " + "\n    ".join(steps)


def test_the_core_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30, "the core's modules were not found"
    cycles = [describe_cycle(graph, cycle_through(graph, c)) for c in strongly_connected(graph)]
    assert not cycles, "import cycles among core/optiplug modules:\n" + "\n".join(cycles)


def test_the_cycle_finder_finds_cycles_and_reports_their_path():
    """The checker itself: a planted cycle, function-level imports counted, TYPE_CHECKING ones not."""
    here = Path(__file__)

    def edge(target: str) -> Import:
        return Import(target, (), here, 1, False)

    graph = {
        "optiplug.a": {"optiplug.b": edge("optiplug.b")},
        "optiplug.b": {"optiplug.c": edge("optiplug.c")},
        "optiplug.c": {"optiplug.a": edge("optiplug.a")},
        "optiplug.d": {"optiplug.d": edge("optiplug.d")},
        "optiplug.e": {"optiplug.a": edge("optiplug.a")},
    }
    components = strongly_connected(graph)
    assert components == [["optiplug.a", "optiplug.b", "optiplug.c"], ["optiplug.d"]]
    assert cycle_through(graph, components[0]) == ["optiplug.a", "optiplug.b", "optiplug.c", "optiplug.a"]
    assert cycle_through(graph, components[1]) == ["optiplug.d", "optiplug.d"]


def test_imports_inside_functions_count_and_type_checking_ones_do_not(tmp_path):
    package = tmp_path / "optiplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from optiplug.hidden import X\n"
        "else:\n"
        "    import optiplug.shown\n"
        "if typing.TYPE_CHECKING:\n"
        "    import optiplug.hidden2\n"
        "def f():\n"
        "    from optiplug.inner import y\n"
        "    class C:\n"
        "        def g(self):\n"
        "            from ..outside import z\n"
    )
    found = {(i.target, i.type_checking) for i in imports_of(package / "mod.py", tmp_path)}
    assert found == {
        ("typing", False),
        ("optiplug", False),
        ("optiplug.hidden", True),
        ("optiplug.shown", False),
        ("optiplug.hidden2", True),
        ("optiplug.inner", False),
        ("outside", False),
    }


# --- (b) plugins use the public API only; only a dialect imports a dialect -----------


def plugin_packages() -> list[str]:
    """Every directory under ``plugins/`` (a package, or one that ought to be), build leftovers aside."""
    return sorted(
        p.name
        for p in PLUGINS.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and not p.name.endswith(".egg-info")
    )


def plugin_files() -> list[Path]:
    return [p for package in plugin_packages() for p in python_files(PLUGINS / package)]


def private_imports(path: Path, root: Path = PLUGINS) -> list[str]:
    """The imports of optiplug modules other than ``optiplug`` and ``optiplug.plugin``, TYPE_CHECKING ones included."""
    bad = []
    for imp in imports_of(path, root):
        if top_level(imp.target) != PACKAGE:
            continue
        if imp.target == PACKAGE:
            # ``from optiplug import plugin`` is the public module; ``from optiplug import engine`` is not
            modules = [n for n in imp.names if (CORE / PACKAGE / n).is_dir() or (CORE / PACKAGE / f"{n}.py").is_file()]
            bad += [f"{imp.where(root)}: from optiplug import {n}" for n in modules if f"{PACKAGE}.{n}" not in PUBLIC]
        elif imp.target not in PUBLIC:
            bad.append(f"{imp.where(root)}: {imp.target}")
    return bad


def dialect_imports(path: Path, root: Path = PLUGINS) -> list[str]:
    own = path.relative_to(root).parts[0]
    return [
        f"{imp.where(root)}: {own} imports {imp.target}"
        for imp in imports_of(path, root)
        if top_level(imp.target) in DIALECTS and top_level(imp.target) != own
    ]


def test_there_are_plugin_modules_to_check():
    assert {"optiplug_torch", "optiplug_vissl", "optiplug_mmcv"} <= set(plugin_packages())
    assert len(plugin_files()) > 20
    not_packages = [name for name in plugin_packages() if not (PLUGINS / name / "__init__.py").is_file()]
    assert not not_packages, f"directories under plugins/ without an __init__.py: {not_packages}"


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_a_plugin_imports_only_the_public_api_of_optiplug(path):
    bad = private_imports(path)
    assert not bad, "plugins may import only `optiplug` and `optiplug.plugin` from optiplug:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_only_a_dialect_plugin_imports_itself(path):
    bad = dialect_imports(path)
    assert not bad, f"only the dialect itself may import {sorted(DIALECTS)}:\n" + "\n".join(bad)


def test_the_plugin_checks_see_private_and_dialect_imports(tmp_path):
    package = tmp_path / "optiplug_algo"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import optiplug\n"
        "from optiplug import ConfigError, plugin\n"
        "from optiplug.plugin import hookimpl\n"
        "import optiplug_torch.schedules\n"
        "def hook():\n"
        "    from optiplug.engine.schedules import progress\n"
        "    from optiplug import recipe\n"
        "    import optiplug_mmcv.dialect\n"
    )
    path = package / "__init__.py"
    assert private_imports(path, tmp_path) == [
        "optiplug_algo/__init__.py:6: optiplug.engine.schedules",
        "optiplug_algo/__init__.py:7: from optiplug import recipe",
    ]
    assert dialect_imports(path, tmp_path) == [
        "optiplug_algo/__init__.py:8: optiplug_algo imports optiplug_mmcv.dialect"
    ]


# --- (c) the core imports no plugin ----------------------------------------------------


def test_the_core_imports_no_plugin_package():
    bad = [
        f"{imp.where()}: {imp.target}"
        for path in python_files(CORE / PACKAGE)
        for imp in imports_of(path, CORE)
        if top_level(imp.target).startswith(PLUGIN_PREFIX)
    ]
    assert not bad, "core/optiplug must not import plugin packages (they arrive by entry point):\n" + "\n".join(bad)


# --- (d) every plugin package is an entry point ------------------------------------------


def entry_points() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["entry-points"]["optiplug"]


def test_every_plugin_package_is_declared_as_an_entry_point():
    declared = {top_level(value.partition(":")[0].strip()) for value in entry_points().values()}
    missing = sorted(set(plugin_packages()) - declared)
    assert not missing, f"packages under plugins/ missing from [project.entry-points.optiplug]: {missing}"


def test_every_entry_point_names_a_module_of_this_repository():
    """The converse: an entry point pointing nowhere would load as a failed plugin."""
    missing = []
    for name, value in entry_points().items():
        parts = value.partition(":")[0].strip().split(".")
        root = CORE if parts[0] == PACKAGE else PLUGINS
        base = root.joinpath(*parts)
        if not ((base / "__init__.py").is_file() or base.with_suffix(".py").is_file()):
            missing.append(f"{name} = {value!r}")
    assert not missing, f"entry points naming no module under core/ or plugins/: {missing}"
