"""jmigrate's own import graph has no cycle.

The graph is read from the source with `ast` (nothing is imported): every `import jmigrate...` and
`from jmigrate... import ...`, at module level and inside functions alike. Function-level imports are
counted on purpose: they only change *when* a module is loaded (kept lazy for heavy optional libraries and
a fast CLI), not what depends on what, and a cycle hidden in a function is still two layers that each need
the other (the rule registry <-> scan context cycle was one). Imports under `if TYPE_CHECKING:` are left
out: they exist for the type checker only and are never executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "jmigrate"

# Cycles that belong to work in progress elsewhere (stores / bridge, issue 9): each must disappear, and
# the test fails when one does so the entry is removed with it. No new cycle may be added here.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, is_package: bool, modules: set[str]) -> set[str]:
    out: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                # `from jmigrate.scan import plan`: a module; `from jmigrate.scan.plan import plan`: a name
                target = f"{source}.{alias.name}"
                out.add(target if target in modules else source)
        todo.extend(ast.iter_child_nodes(node))
    return {m for m in out if m in modules and m != module}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {
        m: _imports(ast.parse(p.read_text("utf-8")), m, p.name == "__init__.py", modules)
        for m, p in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.add(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def test_the_graph_is_read_from_the_whole_package() -> None:
    graph = import_graph()
    assert len(graph) > 60 and "jmigrate.scan.context" in graph
    assert "jmigrate.scan.finding" in graph["jmigrate.scan.context"]


def test_the_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset("abc")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_the_import_graph_has_no_cycle() -> None:
    found = cycles(import_graph())
    new = found - KNOWN_CYCLES
    assert not new, f"import cycles: {[sorted(c) for c in new]}"
    gone = KNOWN_CYCLES - found
    assert not gone, f"fixed, remove from KNOWN_CYCLES: {[sorted(c) for c in gone]}"


def test_no_module_imports_the_package_root() -> None:
    # The root imports the library API (lazily); a module that imported the root for the version would
    # close a loop through it. The version lives in jmigrate.version.
    graph = import_graph()
    assert [m for m, deps in graph.items() if "jmigrate" in deps] == []
