"""Calls that embed texts through a local model object (shared by JM502 and JM504).

A sentence-transformers / transformers / fastembed model is loaded once and called elsewhere: through the
variable it is bound to, an attribute of the instance (`self.model`, set in `__init__` or lazily in the
method that uses it), or a module-level name imported from another module of the scanned repository. v3
needs a task AT each such call (`encode(texts, task=...)`; fastembed `passage_embed`/`query_embed`), so the
call is a finding of its own, with the task inferred for that call.

Which model a loader loads is the set of values its model argument can take (a "may" analysis: every
assignment, branch, `or`, parameter default, argument at the instantiation sites of the class and loop over
a literal tuple is followed, within the module and into constants of the repository's modules). A loader is
a v2 loader when one of those values is a replaced v1/v2 model and none is v3: the path that runs with the
defaults loads v2.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jmigrate.models import MODELS, V3, Model
from jmigrate.scan.context import FileContext
from jmigrate.scan.envfiles import env_values
from jmigrate.scan.python import PyModule, call_name, dotted, kwarg, last_part
from jmigrate.scan.text import model_matches
from jmigrate.scan.walk import Source, decode_bytes

# Loader (last part of the called name) -> kind.
LOADERS = {"SentenceTransformer": "sentence-transformers", "from_pretrained": "transformers",
           "TextEmbedding": "fastembed"}
MODEL_KWARGS = ("model_name", "model", "model_id", "model_name_or_path", "pretrained_model_name_or_path")
# `AutoModel.from_pretrained` is a model; `AutoTokenizer.from_pretrained(...).encode` tokenizes.
_MODEL_CLASS = re.compile(r"^(?:AutoModel\w*|\w*Model)$")
# Methods that embed whatever texts they are given (the side-specific ones, fastembed's query_embed /
# passage_embed, already choose v3's task).
EMBED_METHODS = {"sentence-transformers": {"encode"}, "transformers": {"encode"}, "fastembed": {"embed"}}
# Methods that return the model they are called on (moved, cast or switched to inference mode).
_SAME_MODEL = {"to", "cuda", "cpu", "eval", "half", "float", "bfloat16", "requires_grad_"}
_MAX_VALUES = 32
# In a provenance set (_Flow.origin): a value that is written in another module of the repository.
ELSEWHERE = "elsewhere"
# In a provenance set: a value passes through a call whose result is not followed (any string may come out).
OPAQUE = "opaque"
_MAX_DEPTH = 10


@dataclass(frozen=True)
class Loader:
    call: ast.Call
    kind: str
    legacy: Model | None  # a replaced v1/v2 model it may load (None: none)
    v3: bool  # it may load jina-embeddings-v3
    several: bool  # other values are possible too (a fine-tuned path, another model)


@dataclass(frozen=True)
class EmbedCall:
    call: ast.Call
    loader: Loader
    how: str  # "encode", "embed" or "forward" (a raw transformers forward: model(**inputs))


def _settings_class(cls: ast.ClassDef) -> bool:
    """A pydantic BaseSettings subclass (its fields are read from the environment)."""
    return any(last_part(dotted(b)).endswith("Settings") for b in cls.bases)


@dataclass
class _ModuleFacts:
    star: bool  # a `from module import *` at module level
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]  # module-level, by name
    classes: dict[str, ast.ClassDef]
    settings: list[ast.ClassDef]  # pydantic BaseSettings subclasses
    returns: dict[str, list[ast.expr]]  # filled on demand

    @classmethod
    def of(cls, mod: PyModule) -> _ModuleFacts:
        body = mod.tree.body
        classes = mod.of_type(ast.ClassDef)
        fns: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for s in body:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                fns.setdefault(s.name, []).append(s)
        star = any(isinstance(s, ast.ImportFrom) and any(a.name == "*" for a in s.names) for s in body)
        return cls(star, fns, {c.name: c for c in classes}, [c for c in classes if _settings_class(c)], {})


class _Flow:
    """Possible string values of expressions of one module (memoised: each node is evaluated once)."""

    def __init__(self, mod: PyModule, root: str) -> None:
        self.mod, self.root = mod, root
        # Where .env files are looked for (os.getenv("X") without default); set also for modules read on
        # the side, which follow no further imports (root "").
        # A module parsed for a planned file says where (none when one file is planned: its neighbours'
        # env files were not asked for); one read on the side was given the repository's root.
        self.env_root = mod.__dict__["env_root"] if "env_root" in mod.__dict__ else root
        self.memo: dict[int, tuple[frozenset[str], bool]] = {}
        # Provenance of each evaluated node (see origin()), collected on a stack while values() recurses.
        self.origins: dict[int, frozenset[ast.Constant | str]] = {}
        self._trail: list[set[ast.Constant | str]] = []
        self._attrs: dict[tuple[int, str], list[ast.AST]] | None = None
        self._loops: dict[tuple[int, str], list[ast.AST]] | None = None
        self._calls_by_last: dict[str, list[ast.Call]] | None = None

    # --- indexes built once per module ---------------------------------------------------------------
    def attrs(self) -> dict[tuple[int, str], list[ast.AST]]:
        """(class, attr) -> every value assigned to `self.attr` / `cls.attr` in its methods or class body."""
        if self._attrs is None:
            out: dict[tuple[int, str], list[ast.AST]] = {}
            mod = self.mod
            assigns: list[ast.Assign | ast.AnnAssign] = [
                *mod.of_type(ast.Assign), *mod.of_type(ast.AnnAssign)
            ]
            for node in assigns:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if node.value is None:
                    continue
                for t in targets:
                    cls = self.class_of(t)
                    if cls is None:
                        continue
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in (
                        "self", "cls"
                    ):
                        out.setdefault((id(cls), t.attr), []).append(node.value)
                    elif isinstance(t, ast.Name) and mod.parent(node) is cls:
                        out.setdefault((id(cls), t.id), []).append(node.value)
            self._attrs = out
        return self._attrs

    def loops(self) -> dict[tuple[int, str], list[ast.AST]]:
        """(scope, name) -> the iterables of `for name in ...` loops and comprehensions binding it."""
        if self._loops is None:
            out: dict[tuple[int, str], list[ast.AST]] = {}
            mod = self.mod
            loops: list[ast.For | ast.AsyncFor | ast.comprehension] = [
                *mod.of_type(ast.For), *mod.of_type(ast.AsyncFor), *mod.of_type(ast.comprehension)
            ]
            for node in loops:
                if isinstance(node.target, ast.Name):
                    scope = mod.scope_of(node.target)
                    out.setdefault((id(scope), node.target.id), []).append(node.iter)
            self._loops = out
        return self._loops

    def calls_by_last(self) -> dict[str, list[ast.Call]]:
        if self._calls_by_last is None:
            out: dict[str, list[ast.Call]] = {}
            for c in self.mod.calls:
                out.setdefault(last_part(call_name(c)).removesuffix("()"), []).append(c)
            self._calls_by_last = out
        return self._calls_by_last

    def class_of(self, node: ast.AST) -> ast.ClassDef | None:
        for p in self.mod.ancestors(node):
            if isinstance(p, ast.ClassDef):
                return p
        return None

    # --- values ----------------------------------------------------------------------------------
    def values(self, node: ast.AST | None, depth: int = 0) -> tuple[frozenset[str], bool]:
        """(strings `node` may evaluate to, whether that set is complete). None/unknown pieces make it
        incomplete; `None` constants are left out (`model_path or DEFAULT`)."""
        if node is None or depth > _MAX_DEPTH:
            return frozenset(), False
        key = id(node)
        if key in self.memo:
            if self._trail:
                self._trail[-1] |= self.origins.get(key, frozenset())
            return self.memo[key]
        self.memo[key] = (frozenset(), False)  # a cycle (x = f(x)) contributes nothing
        self._trail.append(set())
        try:
            found = self._values(node, depth)
        finally:
            mine = self._trail.pop()
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            mine.add(node)
        if len(found[0]) > _MAX_VALUES:
            found = (frozenset(sorted(found[0])[:_MAX_VALUES]), False)
        self.memo[key] = found
        self.origins[key] = frozenset(mine)
        if self._trail:
            self._trail[-1] |= mine
        return found

    def origin(self, node: ast.AST | None) -> frozenset[ast.Constant | str]:
        """Where the values of `node` are written: the string literals of this module they come from, and
        ELSEWHERE when a value is a constant of another module of the repository."""
        if node is None:
            return frozenset()
        self.values(node)
        return self.origins.get(id(node), frozenset())

    def _elsewhere(self) -> None:
        if self._trail:
            self._trail[-1].add(ELSEWHERE)

    def _union(self, nodes: Sequence[ast.AST], depth: int) -> tuple[frozenset[str], bool]:
        out: set[str] = set()
        complete = True
        for n in nodes:
            v, c = self.values(n, depth + 1)
            out |= v
            complete &= c
        return frozenset(out), complete

    def _values(self, node: ast.AST, depth: int) -> tuple[frozenset[str], bool]:
        if isinstance(node, ast.Constant):
            if node.value is None:
                return frozenset(), True
            return (frozenset([node.value]), True) if isinstance(node.value, str) else (frozenset(), False)
        if isinstance(node, ast.BoolOp):
            return self._union(list(node.values), depth)
        if isinstance(node, ast.IfExp):
            return self._union([node.body, node.orelse], depth)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return self._union(list(node.elts), depth)  # iterated over by a loop (see loops())
        if isinstance(node, ast.JoinedStr):
            combos: set[str] = {""}
            complete = True
            for v in node.values:
                inner = v.value if isinstance(v, ast.FormattedValue) else v
                parts, c = self.values(inner, depth + 1)
                complete &= c
                if not parts:
                    return frozenset(), False
                combos = {a + b for a in combos for b in parts}
                if len(combos) > _MAX_VALUES:
                    return frozenset(), False
            return frozenset(combos), complete
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, lc = self.values(node.left, depth + 1)
            right, rc = self.values(node.right, depth + 1)
            if not left or not right or len(left) * len(right) > _MAX_VALUES:
                return frozenset(), False
            return frozenset(a + b for a in left for b in right), lc and rc
        if isinstance(node, ast.Call):
            return self._call_values(node, depth)
        if isinstance(node, ast.Subscript):
            if dotted(node.value).endswith("environ"):  # os.environ["X"]
                return self._env(node.slice), False
            found_in = self._picked(node, depth)
            if found_in is None:
                # several tables on the way (CONFIG["MODELS"][key]["ollama"] with key unknown)
                return self._nested_values(node, depth), False
            owner, picked, sure = found_in
            out: set[str] = set()
            complete = sure
            for elt in picked:
                got, c = owner.values(elt, depth + 1)
                if owner is not self:
                    self._elsewhere()
                out |= got
                complete &= c
            return frozenset(out), complete
        if isinstance(node, ast.Name):
            return self._name_values(node, depth)
        if isinstance(node, ast.Attribute):
            return self._attribute_values(node, depth)
        return frozenset(), False

    def _tables(self, node: ast.AST, depth: int) -> list[ast.Dict]:
        """Dict literals `node` may be (`CONFIG`, `CONFIG["MODELS"]["JINA"]`, a name bound to one of them, a
        dict imported from a module of the repository), for nested lookups."""
        if depth > _MAX_DEPTH:
            return []
        if isinstance(node, ast.Dict):
            return [node]
        if isinstance(node, ast.Name):
            scope: ast.AST = self.mod.scope_of(node)
            while True:
                bindings = self.mod.bindings_of(scope).get(node.id)
                if bindings:
                    out = [t for b in bindings if b is not None for t in self._tables(b, depth + 1)]
                    if None in bindings:  # reader, cfg = pick(doc_type)
                        out += [t for e in self._unpacked(scope, node.id) for t in self._tables(e, depth + 1)]
                    if isinstance(scope, ast.Module) and None in bindings:
                        out += self._imported_tables(node.id)
                    return out
                if isinstance(scope, ast.Module):
                    return []
                scope = self.mod.scope_of(scope)
        if isinstance(node, ast.Subscript):
            keys, _ = self.values(node.slice, depth + 1)
            found: list[ast.Dict] = []
            for d in self._tables(node.value, depth + 1):
                for k, v in zip(d.keys, d.values, strict=True):
                    if keys and not (isinstance(k, ast.Constant) and k.value in keys):
                        continue
                    if isinstance(v, ast.Dict):
                        found.append(v)
                    elif d in self._own:  # names are looked up in this module only
                        found += self._tables(v, depth + 1)
            return found
        return []

    @property
    def _own(self) -> set[ast.Dict]:
        found = self.__dict__.get("_own_dicts")
        if found is None:
            found = self.__dict__["_own_dicts"] = set(self.mod.of_type(ast.Dict))
        return found

    def _imported_tables(self, name: str) -> list[ast.Dict]:
        imported = _imports_from(self.mod).get(name)
        if imported is None or not self.root:
            return []
        stmt, real = imported
        for path in _module_files(self.mod, self.root, stmt.module or "", stmt.level):
            other = repo_module(path, self.root)
            value = other.module_constants.get(real) if other is not None else None
            if isinstance(value, ast.Dict):
                self._elsewhere()
                return [value]
        return []

    def _nested_values(self, node: ast.Subscript, depth: int) -> frozenset[str]:
        """`CONFIG["MODELS"]["JINA"]["ollama"]`, `cfg["model"]` with `cfg = CONFIG["MODELS"][key]`: the string
        entries the lookup may reach (in a dict of another module, only its literal strings)."""
        keys, _ = self.values(node.slice, depth + 1)
        out: set[str] = set()
        for d in self._tables(node.value, depth + 1):
            for k, v in zip(d.keys, d.values, strict=True):
                if keys and not (isinstance(k, ast.Constant) and k.value in keys):
                    continue
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    out.add(v.value)
                elif d in self._own:
                    out |= self.values(v, depth + 1)[0]
        return frozenset(out)

    def _container(self, node: ast.AST, depth: int) -> tuple[_Flow, ast.AST] | None:
        """The dict/list/tuple literal `node` stands for, and the flow of the module it is written in:
        a literal, a name bound to one (here, or a module-level constant imported from the repository), or
        an element of one (NAMES["a"]["b"])."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(node, (ast.Dict, ast.List, ast.Tuple)):
            return self, node
        if isinstance(node, ast.Name):
            bound, certain = self.mod.resolve_name(node)
            if certain and bound is not None:
                return self._container(bound, depth + 1)
            imported = _imports_from(self.mod).get(node.id)
            if imported is None or not self.root or bound is not None:
                return None
            stmt, real = imported
            for path in _module_files(self.mod, self.root, stmt.module or "", stmt.level):
                other = repo_module(path, self.root)
                value = other.module_constants.get(real) if other is not None else None
                if other is not None and isinstance(value, (ast.Dict, ast.List, ast.Tuple)):
                    return flow_of(other), value
            return None
        if isinstance(node, ast.Subscript):
            found_in = self._picked(node, depth + 1)
            if found_in is not None and len(found_in[1]) == 1:
                owner, [inner], _ = found_in
                return owner._container(inner, depth + 1)
        return None

    def _picked(self, node: ast.Subscript, depth: int) -> tuple[_Flow, list[ast.AST], bool] | None:
        """The elements `table[key]` may be (all of them when the key is not known), their module's flow,
        and whether the key was known."""
        found = self._container(node.value, depth + 1)
        if found is None:
            return None
        owner, table = found
        if isinstance(table, ast.Dict):
            keys, kc = self.values(node.slice, depth + 1)
            picked: list[ast.AST] = [
                v for k, v in zip(table.keys, table.values, strict=True)
                if not keys or (isinstance(k, ast.Constant) and k.value in keys)
            ]
            return owner, picked, kc and bool(keys)
        if isinstance(table, (ast.List, ast.Tuple)):
            index = self.mod.constant_value(node.slice)
            if type(index) is int and -len(table.elts) <= index < len(table.elts):
                return owner, [table.elts[index]], True
            return owner, list(table.elts), False
        return None

    def _call_values(self, node: ast.Call, depth: int) -> tuple[frozenset[str], bool]:
        name = call_name(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "format" and not node.keywords:
            templates, tc = self.values(node.func.value, depth + 1)
            out: set[str] = set()
            complete = tc
            args = [self.values(a, depth + 1) for a in node.args]
            complete &= all(c for _, c in args)
            if not templates or any(not v for v, _ in args):
                return frozenset(), False
            combos: list[list[str]] = [[]]
            for v, _ in args:
                combos = [[*c, x] for c in combos for x in sorted(v)]
                if len(combos) > _MAX_VALUES:
                    return frozenset(), False
            for t in templates:
                if "{" in t.replace("{}", ""):
                    return frozenset(), False
                for c in combos:
                    try:
                        out.add(t.format(*c))
                    except (IndexError, ValueError):
                        return frozenset(), False
            return frozenset(out), complete
        last = last_part(name)
        if last in ("getenv", "get") or name.endswith("environ.get"):
            # os.getenv("X", default): the default runs when X is unset, and what an env file of the
            # repository (.env, compose environment, Dockerfile ENV) sets X to when it is set
            found = frozenset[str]()
            kw = kwarg(node, "default")
            default = kw.value if kw is not None else node.args[1] if len(node.args) == 2 else None
            if default is not None:
                found, _ = self.values(default, depth + 1)
            if node.args and name.endswith(("getenv", "environ.get")):
                found |= self._env(node.args[0])
            return found, False
        returned = self._returned(node, depth)
        if returned:
            return returned, False
        if self._trail:  # a value computed by code we do not follow (pick(model)): anything may come out
            self._trail[-1].add(OPAQUE)
        return frozenset(), False

    def _env(self, key: ast.AST | None) -> frozenset[str]:
        """Values an env file of the repository sets the variable named by `key` to (scan/envfiles.py)."""
        name = self.mod.constant_value(key) if key is not None else None
        if not isinstance(name, str) or not self.env_root:
            return frozenset()
        found = env_values(self.env_root, self.mod.src.path, name)
        if found:
            self._elsewhere()
        return found

    def _index(self) -> _ModuleFacts:
        """Per-module facts the lookups below need, computed once (the flow stays linear)."""
        found = self.__dict__.get("_facts")
        if found is None:
            found = self.__dict__["_facts"] = _ModuleFacts.of(self.mod)
        return found

    def _returned(self, node: ast.Call, depth: int) -> frozenset[str]:
        """`tag = detect_model(...)` with `def detect_model` in this module: what its returns give (all of
        them must be strings we know, else the result is opaque)."""
        if not isinstance(node.func, ast.Name):
            return frozenset()
        facts = self._index()
        fns = facts.functions.get(node.func.id, [])
        if len(fns) != 1:
            return frozenset()
        fn = fns[0]
        returns = facts.returns.get(fn.name)
        if returns is None:
            returns = facts.returns[fn.name] = [
                r.value
                for r in ast.walk(fn)
                if isinstance(r, ast.Return) and r.value is not None and self.mod.enclosing_function(r) is fn
            ]
        out: set[str] = set()
        for value in returns:
            got = self.values(value, depth + 1)[0]
            if not got:
                return frozenset()
            out |= got
        return frozenset(out)

    def _settings_env(self, attr: str) -> frozenset[str]:
        """A field of a pydantic BaseSettings class of this module is read from the environment too (by its
        name, case-insensitively)."""
        if not self.env_root:
            return frozenset()
        for cls in self._index().settings:
            if _class_field(cls, attr):
                found = env_values(self.env_root, self.mod.src.path, attr, ignore_case=True)
                if found:
                    self._elsewhere()
                    return found
        return frozenset()

    def _imported_settings_env(self, name: str, attr: str) -> frozenset[str]:
        """`from config import settings` ... `settings.attr`: env values of attr when a pydantic settings
        class of that module has the field."""
        imported = _imports_from(self.mod).get(name)
        if imported is None or not self.root:
            return frozenset()
        stmt, _ = imported
        for path in _module_files(self.mod, self.root, stmt.module or "", stmt.level):
            other = repo_module(path, self.root)
            if other is None:
                continue
            for cls in other.of_type(ast.ClassDef):
                if _settings_class(cls) and _class_field(cls, attr):
                    return env_values(self.env_root, other.src.path, attr, ignore_case=True)
        return frozenset()

    def _name_values(self, node: ast.Name, depth: int) -> tuple[frozenset[str], bool]:
        mod = self.mod
        scope: ast.AST = mod.scope_of(node)
        first = True
        while True:
            if first or not isinstance(scope, ast.ClassDef):
                bindings = mod.bindings_of(scope).get(node.id)
                if bindings:
                    return self._bound_values(node, scope, bindings, depth)
            if isinstance(scope, ast.Module):
                value = imported_constant(mod, self.root, node.id) if self._index().star else None
                if value is not None:  # a name only a `from module import *` binds
                    self._elsewhere()
                    return frozenset([value]), False
                return frozenset(), False
            first, scope = False, mod.scope_of(scope)

    def _bound_values(
        self, node: ast.Name, scope: ast.AST, bindings: list[ast.AST | None], depth: int
    ) -> tuple[frozenset[str], bool]:
        values = [b for b in bindings if b is not None]
        out, complete = self._union(values, depth)
        unknown = len(values) < len(bindings)
        if unknown:  # a parameter, loop variable or import among the bindings
            extra, c = self._unbound_values(node.id, scope, depth)
            out |= extra
            complete &= c
        return out, complete

    def _unbound_values(self, name: str, scope: ast.AST, depth: int) -> tuple[frozenset[str], bool]:
        """Values of a name bound by a parameter, a loop over a literal or an import of the repository."""
        out: set[str] = set()
        complete = True
        hit = False
        for it in self.loops().get((id(scope), name), []):
            hit = True
            v, c = self.values(it, depth + 1)
            out |= v
            complete &= c
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            v, c, found = self._parameter_values(scope, name, depth)
            hit |= found
            out |= v
            complete &= c
        unpacked = self._unpacked(scope, name)
        if unpacked:
            v, _ = self._union(unpacked, depth)
            out |= v
            complete = False
        if isinstance(scope, ast.Module):
            value = imported_constant(self.mod, self.root, name)
            if value is not None:
                self._elsewhere()
                return frozenset([value]) | out, complete
        return frozenset(out), complete and hit

    def _unpacked(self, scope: ast.AST, name: str) -> list[ast.AST]:
        """`reader, model = pick(doc_type)` with `def pick` of this module returning tuples: the elements at
        `model`'s position of every tuple it returns."""
        index = self.__dict__.get("_unpacks")
        if index is None:
            index = self.__dict__["_unpacks"] = {}
            for a in self.mod.of_type(ast.Assign):
                if len(a.targets) != 1 or not isinstance(a.targets[0], ast.Tuple):
                    continue
                if not isinstance(a.value, ast.Call) or not isinstance(a.value.func, ast.Name):
                    continue
                elts = a.targets[0].elts
                if any(isinstance(e, ast.Starred) for e in elts):
                    continue
                for i, e in enumerate(elts):
                    if isinstance(e, ast.Name):
                        key = (id(self.mod.scope_of(e)), e.id)
                        index.setdefault(key, []).append((a.value, i, len(elts)))
        out: list[ast.AST] = []
        facts = self._index()
        for call, i, n in index.get((id(scope), name), []):
            fns = facts.functions.get(call.func.id, [])
            if len(fns) != 1:
                continue
            fn = fns[0]
            for r in ast.walk(fn):
                if (
                    isinstance(r, ast.Return)
                    and isinstance(r.value, ast.Tuple)
                    and len(r.value.elts) == n
                    and self.mod.enclosing_function(r) is fn
                ):
                    out.append(r.value.elts[i])
        return out

    def _parameter_values(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef, name: str, depth: int
    ) -> tuple[frozenset[str], bool, bool]:
        a = fn.args
        positional = [*a.posonlyargs, *a.args]
        names = [p.arg for p in positional]
        kwonly = [p.arg for p in a.kwonlyargs]
        if name not in names and name not in kwonly:
            return frozenset(), False, False
        out: set[str] = set()
        complete = True
        defaults = dict(zip(names[len(names) - len(a.defaults) :], a.defaults, strict=True))
        defaults |= {p: d for p, d in zip(kwonly, a.kw_defaults, strict=True) if d is not None}
        if name in defaults:
            v, c = self.values(defaults[name], depth + 1)
            out |= v
            complete &= c
        # Arguments at the call sites in this module: `C(x)` for `C.__init__`, `f(x)` / `self.f(x)`.
        method = isinstance(self.mod.parent(fn), ast.ClassDef)
        callee = fn.name
        if fn.name == "__init__" and method:
            callee = self.mod.parent(fn).name  # type: ignore[union-attr]
        sites = self.calls_by_last().get(callee, [])
        skip = 1 if method and names and names[0] in ("self", "cls") else 0
        index = names.index(name) - skip if name in names else -1
        for site in sites:
            kw = kwarg(site, name)
            arg: ast.AST | None = kw.value if kw is not None else None
            if arg is None and 0 <= index < len(site.args) and not any(
                isinstance(x, ast.Starred) for x in site.args[: index + 1]
            ):
                arg = site.args[index]
            if arg is None:
                if name not in defaults:
                    complete = False
                continue
            v, c = self.values(arg, depth + 1)
            out |= v
            complete &= c
        if not sites:
            complete = False  # called from elsewhere (another module, a framework): unknown arguments
        return frozenset(out), complete, True

    def _attribute_values(self, node: ast.Attribute, depth: int) -> tuple[frozenset[str], bool]:
        mod = self.mod
        base = node.value
        if isinstance(base, ast.Name) and base.id in ("self", "cls"):
            cls = self.class_of(node)
            if cls is None:
                return frozenset(), False
            assigned = self.attrs().get((id(cls), node.attr), [])
            if not assigned:
                return frozenset(), False
            return self._union(assigned, depth)
        on_self = isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id in (
            "self", "cls"
        )
        if on_self and isinstance(base, ast.Attribute):
            # self.params.NAME with self.params = Params(NAME=...) (a pydantic/dataclass object built here)
            cls = self.class_of(node)
            objs = self.attrs().get((id(cls), base.attr), []) if cls is not None else []
            given = [v for o in objs if isinstance(o, ast.Call) for v in _field_values(o, node.attr)]
            if not given:  # Params() / Valves(): the field's default in that class of this module
                classes = self._index().classes
                for o in objs:
                    cls_def = classes.get(last_part(call_name(o))) if isinstance(o, ast.Call) else None
                    field = _class_field(cls_def, node.attr) if cls_def is not None else None
                    if field is not None and field.value is not None:
                        given.append(field.value)
            if given and len(given) == len(objs):
                return self._union(given, depth)
        chain: list[str] = []
        b: ast.AST = node
        while isinstance(b, ast.Attribute):
            chain.append(b.attr)
            b = b.value
        if isinstance(b, ast.Name) and len(chain) >= 2 and b.id not in ("self", "cls"):
            # settings.embedding.model: an instance of a settings class whose field is another settings
            # class with a default (here or in the repository module the instance is imported from)
            chain.reverse()
            value = _chain_value(mod, b.id, chain)
            imported = _imports_from(mod).get(b.id)
            if value is None and imported is not None and self.root:
                stmt, real = imported
                for path in _module_files(mod, self.root, stmt.module or "", stmt.level):
                    other = repo_module(path, self.root)
                    value = _chain_value(other, real, chain) if other is not None else None
                    if value is not None:
                        self._elsewhere()
                        break
            return (frozenset([value]), False) if value is not None else (frozenset(), False)
        if isinstance(base, ast.Name):
            # `config.MODEL` with `import config` (a module of the repository), or settings.NAME assigned
            # once at module level or in a class body of this module.
            value = imported_attribute(mod, self.root, base.id, node.attr)
            env = self._imported_settings_env(base.id, node.attr)
            if value is not None or env:
                self._elsewhere()
                return (frozenset([value]) if value is not None else frozenset()) | env, not env
            found = [
                v for (_, attr), vs in self.attrs().items() if attr == node.attr for v in vs
            ] + [v for k, v in mod.module_constants.items() if k == node.attr]
            env = self._settings_env(node.attr)
            if len(found) == 1:
                values, complete = self.values(found[0], depth + 1)
                return values | env, complete and not env
            if env:
                return env, False
        return frozenset(), False


def _class_field(cls: ast.ClassDef, name: str) -> ast.Assign | ast.AnnAssign | None:
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in stmt.targets
        ):
            return stmt
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name:
            return stmt
    return None


def _chain_value(mod: PyModule, base: str, chain: list[str]) -> str | None:
    """`base.a.b`: base bound once at module level to `C(...)` of a class of `mod`, `a` a field of C whose
    value or annotation is another class of `mod`, `b` that class's field with a string default."""
    classes = {c.name: c for c in mod.tree.body if isinstance(c, ast.ClassDef)}
    bound = [v for k, v in mod.module_constants.items() if k == base]
    if len(bound) != 1 or not isinstance(bound[0], ast.Call) or not isinstance(bound[0].func, ast.Name):
        return None
    cls = classes.get(bound[0].func.id)
    for attr in chain[:-1]:
        field = _class_field(cls, attr) if cls is not None else None
        if field is None:
            return None
        value = field.value
        kind = value.func if isinstance(value, ast.Call) else getattr(field, "annotation", None)
        cls = classes.get(kind.id) if isinstance(kind, ast.Name) else None
    last = _class_field(cls, chain[-1]) if cls is not None else None
    if last is None or last.value is None:
        return None
    found = flow_of(mod).values(last.value)[0]
    return next(iter(found)) if len(found) == 1 else None


def flow_of(mod: PyModule) -> _Flow:
    """The value flow of a module of the repository read on the side (no further hops into others)."""
    found = mod.__dict__.get("_value_flow")
    if found is None:
        found = mod.__dict__["_value_flow"] = _Flow(mod, "")
    return found


def _field_values(obj: ast.Call, field: str) -> list[ast.AST]:
    """What `Params(field=...)` or `Params(**{"field": ...})` sets `field` to."""
    out: list[ast.AST] = []
    for kw in obj.keywords:
        if kw.arg == field:
            out.append(kw.value)
        elif kw.arg is None and isinstance(kw.value, ast.Dict):
            out += [
                v for k, v in zip(kw.value.keys, kw.value.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == field
            ]
    return out


def flow_with_root(mod: PyModule) -> _Flow:
    """The module's value flow, following the repository's modules when the parse knows its root."""
    found = mod.__dict__.get("_value_flow")
    if found is None:
        found = mod.__dict__["_value_flow"] = _Flow(mod, mod.__dict__.get("project_root", ""))
    return found


def flow(ctx: FileContext, mod: PyModule) -> _Flow:
    found = mod.__dict__.get("_value_flow")
    if found is None:
        found = mod.__dict__["_value_flow"] = _Flow(mod, ctx.project.root)
    return found


# --- modules of the repository ------------------------------------------------------------------------


def _module_files(mod: PyModule, root: str, dotted_name: str, level: int) -> list[Path]:
    return module_paths(mod.src.path, root, dotted_name, level)


def module_paths(src_path: str, root: str, dotted_name: str, level: int) -> list[Path]:
    """Files that `from <dotted_name> import ...` (with `level` leading dots) may mean, seen from the file at
    `src_path` (relative to `root`)."""
    parts = dotted_name.split(".") if dotted_name else []
    if level:
        base = Path(root, src_path).parent
        for _ in range(level - 1):
            base = base.parent
        bases = [base]
    else:
        # Absolute imports: from the importing file's folder and each folder above it up to the root (a
        # script run from its own folder or a project in a subfolder), and from src/.
        here = Path(root, src_path).parent
        ups = [here, *here.parents[: max(0, len(Path(src_path).parts) - 1)]]  # up to the root
        bases = [*ups, Path(root, "src")]
    return [
        c for b in bases for c in (b.joinpath(*parts).with_suffix(".py"), b.joinpath(*parts, "__init__.py"))
    ]


def imported_constant(mod: PyModule, root: str, name: str) -> str | None:
    """`from .config import MODEL`: the string MODEL evaluates to in that module of the repository."""
    if not root:
        return None
    for path, imported in _from_imports(mod, root, name, star=True):
        value = _constant_in(path, root, imported)
        if value is not None:
            return value
    return None


def _from_imports(mod: PyModule, root: str, name: str, star: bool = False) -> Iterator[tuple[Path, str]]:
    """`from .config import MODEL [as name]` (and, with `star`, `from .settings import *`): each file of the
    repository the local `name` may come from, with the name it has there."""
    for stmt in mod.tree.body:
        if not isinstance(stmt, ast.ImportFrom):
            continue
        for alias in stmt.names:
            every = star and alias.name == "*"  # from .settings import *: any of its module-level names
            if not every and (alias.asname or alias.name) != name:
                continue
            for path in _module_files(mod, root, stmt.module or "", stmt.level):
                yield path, name if every else alias.name


def imported_attribute(mod: PyModule, root: str, module_name: str, attr: str) -> str | None:
    """`import config` ... `config.MODEL`: MODEL's string in that module of the repository."""
    if not root:
        return None
    for stmt in mod.tree.body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if (alias.asname or alias.name) == module_name:
                    for path in _module_files(mod, root, alias.name, 0):
                        value = _constant_in(path, root, attr)
                        if value is not None:
                            return value
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:  # from app import config
                if (alias.asname or alias.name) == module_name:
                    sub = ".".join(p for p in (stmt.module or "", alias.name) if p)
                    for path in _module_files(mod, root, sub, stmt.level):
                        value = _constant_in(path, root, attr)
                        if value is not None:
                            return value
                    # from config import settings: an object of that module; its class sets attr once
                    for path in _module_files(mod, root, stmt.module or "", stmt.level):
                        value = _constant_in(path, root, attr, classes=True)
                        if value is not None:
                            return value
    return None


def _safe(path: Path, root: str) -> tuple[int, int] | None:
    try:
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(Path(root).resolve()):
            return None
        st = path.stat()
    except (OSError, ValueError):
        return None
    return None if st.st_size > 1 << 20 else (st.st_mtime_ns, st.st_size)


def repo_module(path: Path, root: str) -> PyModule | None:
    """A module of the scanned repository, parsed (cached by size and mtime: `apply` may rewrite it)."""
    stamp = _safe(path, root)
    return None if stamp is None else _parsed(str(path), root, *stamp)


@lru_cache(maxsize=256)
def _parsed(path: str, root: str, mtime_ns: int, size: int) -> PyModule | None:
    try:
        text, encoding = decode_bytes(Path(path).read_bytes(), "python")
        rel = Path(path).relative_to(Path(root)).as_posix() if Path(path).is_relative_to(root) else path
        mod = PyModule.parse(Source(rel, text, "python", encoding))
        mod.__dict__["env_root"] = root  # env files are looked up for it too (scan/envfiles.py)
    except (OSError, SyntaxError, ValueError, RecursionError, Exception):  # noqa: BLE001 -- never fatal
        return None
    return mod


def _constant_in(path: Path, root: str, name: str, classes: bool = False) -> str | None:
    """The string `name` is bound to at module level (with `classes`, or in a class body: a settings
    object's default) in that module, when it is bound there once."""
    mod = repo_module(path, root)
    if mod is None:
        return None
    bodies = [mod.tree.body, *(c.body for c in mod.of_type(ast.ClassDef))] if classes else [mod.tree.body]
    values = [
        s.value
        for body in bodies
        for s in body
        if (isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in s.targets))
        or (isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.target.id == name)
    ]
    if len(values) != 1:
        return None
    f = mod.__dict__.get("_value_flow")
    if f is None:
        f = mod.__dict__["_value_flow"] = _Flow(mod, "")  # no further hops: one module away is enough
    f.env_root = root
    found, _ = f.values(values[0])
    legacy = [v for v in found if any(True for _ in model_matches(v))]
    if len(found) == 1:
        return next(iter(found))
    return legacy[0] if len(legacy) == 1 else None


# --- loaders and the calls that embed through them ---------------------------------------------------


# A local folder named like an abbreviated v2 model (`../models/jina-v2-zh`, `./jina_embeddings_v2_de`): a
# downloaded copy of that model, most likely (JM107 asks the user to confirm). The language is required.
_LOCAL_COPY = re.compile(
    r"(?:^|[/\\])jina[-_]?(?:embeddings?[-_]?)?v2[-_]?(?:(?P<size>small|base)[-_]?)?(?P<lang>en|de|es|zh)[/\\]?$",
    re.IGNORECASE,
)


def local_copy(value: str) -> Model | None:
    """The replaced v2 model a local folder's name abbreviates (`jina-v2-zh`: base-zh), if it says so. Only
    asked for the argument of a loader, where a name that is no Hugging Face id is a folder."""
    m = _LOCAL_COPY.search(value)
    if m is None:
        return None
    size = (m.group("size") or "base").lower()
    return MODELS.get(f"jina-embeddings-v2-{size}-{m.group('lang').lower()}")


def loader_of(ctx: FileContext, mod: PyModule, call: ast.Call) -> Loader | None:
    name = call_name(call)
    kind = LOADERS.get(last_part(name))
    if kind is None:
        return None
    if kind == "transformers":
        owner = last_part(dotted(call.func.value)) if isinstance(call.func, ast.Attribute) else ""
        if not _MODEL_CLASS.match(owner) or "Tokenizer" in owner:
            return None
    kw = kwarg(call, *MODEL_KWARGS)
    node = kw.value if kw is not None else (call.args[0] if call.args else None)
    found, complete = flow(ctx, mod).values(node)
    legacy: Model | None = None
    v3 = False
    for value in sorted(found):
        if value.rsplit("/", 1)[-1].split("@", 1)[0] == V3:
            v3 = True
        for m in model_matches(value):
            if m.model.replacement is not None and legacy is None:
                legacy = m.model
        if legacy is None:
            legacy = local_copy(value)
    if legacy is None and not v3:
        return None
    return Loader(call, kind, legacy, v3, several=len(found) > 1 or not complete)


def _loader_for(ctx: FileContext, mod: PyModule, expr: ast.AST, depth: int = 0) -> Loader | None:
    """The loader whose model `expr` (the receiver of `.encode`, or the callee of a forward) holds: every
    value it may hold is that loader's result (or None, for lazy loading)."""
    if depth > 3:
        return None
    while (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr in _SAME_MODEL
    ):
        expr = expr.func.value  # AutoModel.from_pretrained(...).to(device): the same model
    if isinstance(expr, ast.Call):
        return loader_of(ctx, mod, expr)
    f = flow(ctx, mod)
    candidates: list[ast.AST] = []
    on_self = isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in (
        "self", "cls"
    )
    if isinstance(expr, ast.Attribute) and on_self:
        cls = f.class_of(expr)
        if cls is None:
            return None
        candidates = f.attrs().get((id(cls), expr.attr), [])
    elif isinstance(expr, ast.Name):
        scope: ast.AST = mod.scope_of(expr)
        first = True
        while True:
            if first or not isinstance(scope, ast.ClassDef):
                bindings = mod.bindings_of(scope).get(expr.id)
                shared = _globals(mod).get(expr.id)
                if bindings and shared is not None and (
                    isinstance(scope, ast.Module) or id(scope) in shared[0]
                ):
                    # `global model` in the functions that set it: every module-level and global binding
                    bindings = [*mod.bindings_of(mod.tree).get(expr.id, []), *shared[1]]
                if bindings:
                    if any(b is None for b in bindings):
                        if isinstance(scope, ast.Module) and len(bindings) == 1:
                            return _imported_loader(ctx, mod, expr.id)
                        return None
                    candidates = list(bindings)  # type: ignore[arg-type]
                    if first and isinstance(scope, ast.Module) and shared is None and len(candidates) > 1:
                        # Top-level code runs in order (a notebook comparing models reassigns `model`):
                        # the assignment before the use is the one it sees.
                        at = (expr.lineno, expr.col_offset)
                        before = [c for c in candidates if (c.lineno, c.col_offset) < at]  # type: ignore[attr-defined]
                        if before:
                            candidates = [max(before, key=lambda c: (c.lineno, c.col_offset))]  # type: ignore[attr-defined]
                    break
            if isinstance(scope, ast.Module):
                return None
            first, scope = False, mod.scope_of(scope)
    loaders = [
        c for c in candidates if not (isinstance(c, ast.Constant) and c.value is None)
    ]
    if not loaders:
        return None
    found = [_loader_for(ctx, mod, c, depth + 1) for c in loaders]
    if any(x is None for x in found):
        return None
    return found[0]


def _globals(mod: PyModule) -> dict[str, tuple[set[int], list[ast.AST]]]:
    """Names declared `global` in functions: (ids of those functions, values they assign to the name)."""
    found = mod.__dict__.get("_globals")
    if found is None:
        found = {}
        for g in mod.of_type(ast.Global):
            fn = mod.scope_of(g)
            for name in g.names:
                fns, values = found.setdefault(name, (set(), []))
                if id(fn) in fns:
                    continue
                fns.add(id(fn))
                for n in ast.walk(fn):
                    if isinstance(n, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == name for t in n.targets
                    ):
                        values.append(n.value)
        mod.__dict__["_globals"] = found
    return found


def _imported_loader(ctx: FileContext, mod: PyModule, name: str) -> Loader | None:
    """`from .models import encoder`: a module-level loader call in that module of the repository."""
    root = ctx.project.root
    if not root:
        return None
    for path, imported in _from_imports(mod, root, name):
        other = repo_module(path, root)
        if other is None:
            continue
        value = other.module_constants.get(imported)
        if isinstance(value, ast.Call):
            other_ctx = FileContext(other.src, project=ctx.project)
            other_ctx._py, other_ctx._parsed = other, True
            return _loader_for(other_ctx, other, value, 2)
    return None


def embed_calls(ctx: FileContext, mod: PyModule) -> list[EmbedCall]:
    """Every call of this module that embeds texts through a local Jina model (legacy or v3)."""
    cached = mod.__dict__.get("_embed_calls")
    if cached is not None:
        return cached
    out: list[EmbedCall] = []
    training = _training_code(mod)
    for call in mod.calls:
        func = call.func
        if training and _owner(mod, call) in training:
            continue
        if isinstance(func, ast.Attribute) and func.attr in ("encode", "embed"):
            loader = _loader_for(ctx, mod, func.value)
            if loader is not None and func.attr in EMBED_METHODS[loader.kind]:
                out.append(EmbedCall(call, loader, func.attr))
            continue
        if isinstance(func, (ast.Name, ast.Attribute)) and (call.args or call.keywords):
            loader = _loader_for(ctx, mod, func)
            if loader is not None and loader.kind == "transformers":
                out.append(EmbedCall(call, loader, "forward"))
    # A forward pass in one branch of an `if` and an encode() of the same model outside that branch, in one
    # function, is the fallback for models without encode() (`if hasattr(model, "encode")`, a class-name
    # test): Jina's remote code has encode(), so that branch does not run for it. (Both at top level, as in
    # a late-chunking notebook, both run.)
    encodes = [e for e in out if e.how == "encode"]
    out = [e for e in out if e.how != "forward" or not _fallback(mod, e, encodes)]
    mod.__dict__["_embed_calls"] = out
    return out


def _branch(mod: PyModule, call: ast.Call, fn: ast.AST) -> set[int] | None:
    """Ids of the nodes in the branch of the nearest `if` (inside `fn`) that holds `call`."""
    child: ast.AST = call
    for p in mod.ancestors(call):
        if p is fn:
            return None
        if isinstance(p, ast.If):
            branch = p.body if child in p.body else p.orelse if child in p.orelse else None
            return None if branch is None else {id(n) for stmt in branch for n in ast.walk(stmt)}
        child = p
    return None


def _fallback(mod: PyModule, forward: EmbedCall, encodes: list[EmbedCall]) -> bool:
    fn = mod.enclosing_function(forward.call)
    if fn is None:
        return False
    mine = _branch(mod, forward.call, fn)
    for e in encodes:
        if e.loader.call is not forward.loader.call or mod.enclosing_function(e.call) is not fn:
            continue
        theirs = _branch(mod, e.call, fn)
        if mine is not None and id(e.call) not in mine:
            return True
        if theirs is not None and id(forward.call) not in theirs:
            return True
    return False


def _owner(mod: PyModule, node: ast.AST) -> ast.AST:
    """The outermost class around `node`, else its outermost function, else the module."""
    owner: ast.AST = mod.tree
    for p in mod.ancestors(node):
        if isinstance(p, ast.ClassDef):
            owner = p
        elif isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)) and not isinstance(owner, ast.ClassDef):
            owner = p
    return owner


def _training_code(mod: PyModule) -> set[ast.AST]:
    """Classes/functions that fine-tune the model (`loss.backward()`, `optimizer.zero_grad()`): their forward
    passes train v2 (moving a fine-tune to v3 is a new training, not a task argument), they embed nothing."""
    out: set[ast.AST] = set()
    for call in mod.calls:
        if isinstance(call.func, ast.Attribute) and call.func.attr in ("backward", "zero_grad"):
            owner = _owner(mod, call)
            if owner is not mod.tree:
                out.add(owner)
    return out

def _top_level(mod: PyModule) -> dict[str, ast.stmt]:
    """Functions and classes defined at module level, by name (built once: looked up for every call)."""
    found = mod.__dict__.get("_top_level")
    if found is None:
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        defs = [s for s in mod.tree.body if isinstance(s, kinds)]
        twice = {n for n, k in Counter(s.name for s in defs).items() if k > 1}
        # A name defined twice (`if GPU: def embed...` / `else: def embed...` at top level) is ambiguous.
        found = mod.__dict__["_top_level"] = {s.name: s for s in defs if s.name not in twice}
    return found


def _imports_from(mod: PyModule) -> dict[str, tuple[ast.ImportFrom, str]]:
    """Names bound by module-level `from X import name [as alias]`: alias -> (statement, name)."""
    found = mod.__dict__.get("_imports_from")
    if found is None:
        found = {}
        for stmt in mod.tree.body:
            if isinstance(stmt, ast.ImportFrom):
                for alias in stmt.names:
                    found.setdefault(alias.asname or alias.name, (stmt, alias.name))
        mod.__dict__["_imports_from"] = found
    return found
