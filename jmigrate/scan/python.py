"""Python detection with the stdlib `ast` (libcst is ~26x slower; see MEASURED.md): parse once, map `ast`
positions (UTF-8 byte columns) to character offsets, and answer the questions rules ask about call sites.

Nothing from the scanned file is imported or executed: `ast.parse` only.
"""

from __future__ import annotations

import ast
import bisect
import warnings
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

from jmigrate.scan.walk import Source

_N = TypeVar("_N", bound=ast.AST)


def dotted(node: ast.AST) -> str:
    """ "a.b.c" for Name/Attribute chains, with "()" after called parts ("KMeans().fit"); "" otherwise."""
    parts: list[str] = []
    called = False
    while True:
        if isinstance(node, ast.Call):
            called, node = True, node.func
            continue
        if isinstance(node, ast.Attribute):
            parts.append(node.attr + ("()" if called else ""))
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id + ("()" if called else ""))
            break
        else:
            return ""
        called = False
    return ".".join(reversed(parts))


def call_name(call: ast.Call) -> str:
    return dotted(call.func)


def last_part(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def kwarg(call: ast.Call, *names: str) -> ast.keyword | None:
    for kw in call.keywords:
        if kw.arg in names:
            return kw
    return None


@dataclass
class PyModule:
    src: Source
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    # Every node in `ast.walk` order (breadth first) and the same nodes by type: the one walk of the
    # tree that rules share (walking a large module again per rule was most of `plan`'s time).
    nodes: list[ast.AST] = field(default_factory=list)
    _by_type: dict[type[ast.AST], list[ast.AST]] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, src: Source, text: str | None = None) -> PyModule:
        """Parse `src` (or `text`, a same-length stand-in such as a notebook cell with magics masked)."""
        with warnings.catch_warnings():
            # Invalid escape sequences in the user's code are their business, not a crash of ours.
            warnings.simplefilter("ignore")
            tree = ast.parse(src.text if text is None else text, filename=src.path)
        mod = cls(src, tree)
        parents, nodes, by_type = mod.parents, mod.nodes, mod._by_type
        todo: deque[ast.AST] = deque([tree])
        while todo:  # ast.walk's order, with the parent map and the type buckets filled on the way
            node = todo.popleft()
            nodes.append(node)
            bucket = by_type.get(type(node))
            if bucket is None:
                by_type[type(node)] = bucket = []
            bucket.append(node)
            for child in ast.iter_child_nodes(node):
                parents[child] = node
                todo.append(child)
        return mod

    def of_type(self, kind: type[_N]) -> list[_N]:
        """Nodes of exactly this class (ast node classes are leaves: no subclass to miss), in walk order."""
        return self._by_type.get(kind, [])  # type: ignore[return-value]

    def int_constants(self, values: Collection[int]) -> list[ast.Constant]:
        """Integer literals (not bools) equal to one of `values`."""
        return [
            n for n in self.of_type(ast.Constant) if type(n.value) is int and n.value in values
        ]

    # --- positions -------------------------------------------------------------------------------
    def start(self, node: ast.AST) -> int:
        return self.src.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.src.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.start(node), self.end(node)

    def segment(self, node: ast.AST) -> str:
        s, e = self.span(node)
        return self.src.text[s:e]

    # --- structure -------------------------------------------------------------------------------
    @property
    def calls(self) -> list[ast.Call]:
        return self.of_type(ast.Call)

    @cached_property
    def _strings(self) -> tuple[list[int], list[ast.Constant]]:
        nodes = sorted(
            (n for n in self.of_type(ast.Constant) if isinstance(n.value, str)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        return [self.start(n) for n in nodes], nodes

    def string_at(self, offset: int) -> ast.Constant | None:
        """The string literal whose source span holds `offset` (None in comments)."""
        starts, nodes = self._strings
        i = bisect.bisect_right(starts, offset) - 1
        while i >= 0:
            node = nodes[i]
            if self.end(node) > offset:
                return node
            if starts[i] < offset - 10_000:
                break
            i -= 1
        return None

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.parents.get(node)

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        p = self.parents.get(node)
        while p is not None:
            yield p
            p = self.parents.get(p)

    def enclosing_call(self, node: ast.AST) -> ast.Call | None:
        """The call this node is an argument of (through f-strings, dicts, lists and keywords)."""
        for p in self.ancestors(node):
            if isinstance(p, ast.Call):
                return p
            if not isinstance(
                p,
                (
                    ast.JoinedStr,
                    ast.FormattedValue,
                    ast.BinOp,
                    ast.keyword,
                    ast.Dict,
                    ast.List,
                    ast.Tuple,
                    ast.Starred,
                ),
            ):
                return None
        return None

    def enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        for p in self.ancestors(node):
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return p
        return None

    def assigned_to(self, node: ast.AST) -> str | None:
        """Name (dotted, e.g. "self.emb") the value of `node` is bound to, if directly assigned."""
        p = self.parent(node)
        while isinstance(p, ast.Await):
            node, p = p, self.parent(p)
        if isinstance(p, ast.Assign) and p.value is node and len(p.targets) == 1:
            return dotted(p.targets[0]) or None
        if isinstance(p, (ast.AnnAssign, ast.NamedExpr)) and p.value is node:
            return dotted(p.target) or None
        if isinstance(p, ast.withitem) and p.context_expr is node and p.optional_vars is not None:
            return dotted(p.optional_vars) or None
        return None

    def constant_value(self, node: ast.AST | None) -> object:
        """Literal value of a node, following a Name to its binding in the scope Python would use; None
        when that name is bound more than once there (which value is used depends on the run)."""
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            value, certain = self.resolve_name(node)
            return value.value if certain and isinstance(value, ast.Constant) else None
        return None

    @cached_property
    def module_constants(self) -> dict[str, ast.AST]:
        out: dict[str, ast.AST] = {}
        for stmt in self.tree.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ):
                out[stmt.targets[0].id] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                out[stmt.target.id] = stmt.value
        return out

    def resolve_dict(self, node: ast.AST | None) -> tuple[ast.Dict | None, bool]:
        """A dict literal, directly or through a name (or `json.dumps(...)`), and whether that is certain:
        False when the name is bound more than once in its scope (branches, reassignment, a parameter)."""
        if isinstance(node, ast.Dict):
            return node, True
        if isinstance(node, ast.Call) and call_name(node) in ("json.dumps", "dumps") and node.args:
            return self.resolve_dict(node.args[0])
        if isinstance(node, ast.Name):
            value, certain = self.resolve_name(node)
            if isinstance(value, ast.Dict):
                return value, certain
        return None, False

    # --- scopes ----------------------------------------------------------------------------------
    _SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.Module)

    def scope_of(self, node: ast.AST) -> ast.AST:
        """The function, lambda, class or module whose namespace a name at `node` is looked up in first."""
        for p in self.ancestors(node):
            if isinstance(p, self._SCOPES):
                return p
        return self.tree

    def resolve_name(self, name: ast.Name) -> tuple[ast.AST | None, bool]:
        """The value a name is bound to, by Python's scoping rules (local, enclosing functions, module;
        class bodies are not seen from their methods), and whether it is certain: one binding, an
        assignment of that value, made before the use when in the same scope."""
        scope: ast.AST | None = self.scope_of(name)
        first = True
        while scope is not None:
            if first or not isinstance(scope, ast.ClassDef):
                found = self._bindings(scope).get(name.id)
                if found:
                    values = [v for v in found if v is not None]
                    before = [v for v in values if not first or v.lineno < name.lineno]  # type: ignore[attr-defined]
                    if len(found) == 1 and values and (before or not first):
                        return values[0], True
                    guesses = before or values
                    return (guesses[-1] if guesses else None), False
            first = False
            scope = None if isinstance(scope, ast.Module) else self.scope_of(scope)
        return None, False

    def bindings_of(self, scope: ast.AST) -> dict[str, list[ast.AST | None]]:
        """Names bound directly in `scope` (see `_bindings`)."""
        return self._bindings(scope)

    def _bindings(self, scope: ast.AST) -> dict[str, list[ast.AST | None]]:
        """Names bound directly in `scope` (not in nested functions/classes) -> the value of each binding
        (None for bindings without one simple value: parameters, loops, imports, unpacking, augmented)."""
        cache: dict[ast.AST, dict[str, list[ast.AST | None]]] = self.__dict__.setdefault("_binding_cache", {})
        if scope in cache:
            return cache[scope]
        out: dict[str, list[ast.AST | None]] = {}

        def bind(name: str, value: ast.AST | None) -> None:
            out.setdefault(name, []).append(value)

        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = scope.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:
                    bind(arg.arg, None)
        body = scope.body if isinstance(scope.body, list) else [scope.body]  # type: ignore[attr-defined]
        todo: list[ast.AST] = list(body)
        while todo:
            n = todo.pop()
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(n.name, None)
                todo.extend(n.decorator_list)
                continue  # a nested scope: its own names are not ours
            if isinstance(n, ast.Lambda):
                continue
            if isinstance(n, (ast.Global, ast.Nonlocal)):
                for g in n.names:
                    bind(g, None)  # bound elsewhere as well: never certain
                continue
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                for alias in n.names:
                    bind((alias.asname or alias.name).split(".")[0], None)
                continue
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                p = self.parents.get(n)
                simple = (
                    isinstance(p, ast.Assign) and len(p.targets) == 1 and p.targets[0] is n
                ) or (isinstance(p, (ast.AnnAssign, ast.NamedExpr)) and p.target is n and p.value is not None)
                bind(n.id, p.value if simple else None)  # type: ignore[union-attr]
                continue
            if isinstance(n, ast.ExceptHandler) and n.name:
                bind(n.name, None)
            if isinstance(n, ast.AnnAssign) and n.value is None:
                continue  # `x: int` alone binds nothing
            todo.extend(ast.iter_child_nodes(n))
        cache[scope] = out
        return out

    def names_in(self, node: ast.AST) -> frozenset[str]:
        """Every dotted name read inside `node` ("emb", "self.emb", ...); remembered per node, since task
        inference asks about the same calls for many findings."""
        memo: dict[ast.AST, frozenset[str]] = self.__dict__.setdefault("_names_memo", {})
        found = memo.get(node)
        if found is None:
            out: set[str] = set()
            for n in ast.walk(node):
                if isinstance(n, (ast.Name, ast.Attribute)):
                    d = dotted(n)
                    if d:
                        out.add(d)
            found = memo[node] = frozenset(out)
        return found


def dict_key(d: ast.Dict, key: str) -> int | None:
    """Index of a string key in a dict literal."""
    for i, k in enumerate(d.keys):
        if isinstance(k, ast.Constant) and k.value == key:
            return i
    return None
