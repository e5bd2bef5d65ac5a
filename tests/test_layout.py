"""The package layout: data flows one way (DESIGN.md, Architecture), so no module imports another that
imports it back, at the top or inside a function, and the report never reaches the grid of runs."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import nncompare

PACKAGE = Path(nncompare.__file__).parent


def module_name(path: Path) -> str:
    parts = ["nncompare", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the nncompare modules it names in an import statement, anywhere in its code (the
    parent packages that Python imports on the way are not edges: every module would reach the root)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:  # `from . import x` names a module x when there is one
                    edges.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph[todo.pop()] - seen:
            seen.add(w)
            todo.append(w)
    return seen


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_report_never_imports_the_grid_of_runs():
    graph = import_graph()
    for name in (m for m in graph if m.startswith("nncompare.report")):
        assert not {m for m in reachable(graph, name) if m.startswith(("nncompare.runs", "nncompare.cli"))}, name


def test_lower_layers_do_not_reach_up():
    """data and models know nothing of training, runs, the store or the report; train knows no runs."""
    graph = import_graph()
    above = {"data": ("train", "runs", "store", "report", "cli", "analysis"), "models": ("train", "runs", "store", "report", "cli"), "train": ("runs", "store", "report", "cli")}
    for layer, forbidden in above.items():
        for name in (m for m in graph if m.startswith(f"nncompare.{layer}")):
            bad = {m for m in reachable(graph, name) if m.split(".")[1] in forbidden}
            assert not bad, f"{name} reaches {sorted(bad)}"


def test_every_module_imports():
    for name in sorted(import_graph()):
        importlib.import_module(name)
