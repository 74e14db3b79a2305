"""Embedding helpers and their callers (shared by JM201, JM502, JM504 and the model-name rules).

A function or method that embeds its argument (through a local Jina model found by `_calls.embed_calls`, or a
raw request to /v1/embeddings with a v2 payload and no task) is a helper: whoever calls it chooses what is
embedded, so each call, in any module of the repository, is where the task is chosen. The calls register the
side they serve on the project; once the whole tree is planned, the helper's own findings are re-worded with
those sides merged (plan.py).
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jmigrate.models import MODELS, V3, Model
from jmigrate.rules._calls import (
    EmbedCall,
    _imports_from,
    _module_files,
    _top_level,
    embed_calls,
    flow,
    repo_module,
)
from jmigrate.rules._requests import python_requests
from jmigrate.rules._sites import PyRequest
from jmigrate.scan.context import FileContext
from jmigrate.scan.python import PyModule, dict_key, kwarg
from jmigrate.scan.tasks import TaskGuess, infer_call, own_side
from jmigrate.scan.text import model_matches

_Fn = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Wrapper:
    """A function or method that embeds (part of) its argument through a local Jina model (`def embed(texts):
    return model.encode(texts)`) or a raw request to /v1/embeddings with a v2 payload and no task. Whoever
    calls it decides what is embedded, so the task is chosen there."""

    fn: _Fn
    inner: EmbedCall | None  # the local model call (None: a request helper)
    # The helper that holds the embedding call, (path, name, line): the same for a helper of a helper.
    origin: tuple[str, str, int] = ("", "", 0)
    request: PyRequest | None = None  # the raw HTTP request (a request helper)
    model: Model | None = None  # the request's legacy model


def _request_model(ctx: FileContext, mod: PyModule, req: PyRequest) -> Model | None:
    """The replaced v1/v2 model an embeddings request sends, or v3 (after `apply`: the calls still choose no
    task); None for another model, a task already set, or a payload this module does not show."""
    payload = req.payload
    if payload is None or dict_key(payload, "task") is not None:
        return None
    at = dict_key(payload, "model")
    if at is None:
        return None
    found, _ = flow(ctx, mod).values(payload.values[at])
    legacy = None
    for value in sorted(found):
        if value.rsplit("/", 1)[-1] == V3:
            return MODELS[V3]
        for m in model_matches(value):
            if m.model.replacement is not None and legacy is None:
                legacy = m.model
    return legacy


# Calls that keep the texts as they are (a copy, a slice, a count): taint flows through them, not others
# (`chunks = self.split(page)` makes new texts: whoever calls `crawl(urls)` does not choose what is embedded).
_PLAIN_CALLS = {"list", "tuple", "str", "len", "range", "enumerate", "zip", "sorted", "reversed", "min",
                "max"}


def _plain(node: ast.AST) -> bool:
    return all(
        not isinstance(n, ast.Call) or (isinstance(n.func, ast.Name) and n.func.id in _PLAIN_CALLS)
        for n in ast.walk(node)
    )


def _tainted(mod: PyModule, fn: _Fn) -> set[str]:
    """Names in `fn` holding its argument texts: the parameters, and locals assigned from them by copying,
    slicing, indexing or looping (not by a call that makes new texts)."""
    a = fn.args
    names = {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if p is not None}
    names -= {"self", "cls"}
    for _ in range(2):
        for node in ast.walk(fn):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                read = {n.split(".", 1)[0] for n in mod.names_in(node.value)}
                if read & names and _plain(node.value):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            elif isinstance(node, (ast.For, ast.comprehension)):
                if {n.split(".", 1)[0] for n in mod.names_in(node.iter)} & names and _plain(node.iter):
                    names |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return names


def _reads(mod: PyModule, call: ast.Call, names: set[str]) -> bool:
    """Whether the call is given (a plain copy or part of) one of `names`."""
    args = [*call.args, *(k.value for k in call.keywords)]
    return any({n.split(".", 1)[0] for n in mod.names_in(x)} & names and _plain(x) for x in args)


def _enclosing_fn(mod: PyModule, node: ast.AST) -> _Fn | None:
    return mod.enclosing_function(node)


def wrappers(ctx: FileContext, mod: PyModule) -> dict[ast.AST, Wrapper]:
    """Helpers of this module, by function node (a helper calling a helper with its argument is one too)."""
    cached = mod.__dict__.get("_wrappers")
    if cached is not None:
        return cached
    out: dict[ast.AST, Wrapper] = {}
    taint: dict[ast.AST, set[str]] = {}

    def tainted(fn: _Fn) -> set[str]:
        if fn not in taint:
            taint[fn] = _tainted(mod, fn)
        return taint[fn]

    path = mod.src.path
    for ec in embed_calls(ctx, mod):
        fn = _enclosing_fn(mod, ec.call)
        if fn is not None and fn not in out and _reads(mod, ec.call, tainted(fn)):
            out[fn] = Wrapper(fn, ec, (path, fn.name, fn.lineno))
    if "embeddings" in ctx.src.text:  # a request to /v1/embeddings needs the path in the module
        for req in python_requests(ctx):
            fn = _enclosing_fn(mod, req.call)
            if fn is None or fn in out or not _reads(mod, req.call, tainted(fn)):
                continue
            model = _request_model(ctx, mod, req)
            if model is not None:
                out[fn] = Wrapper(fn, None, (path, fn.name, fn.lineno), req, model)
    if out:
        for _ in range(4):  # helpers of helpers, a few levels deep
            grown = False
            for call in mod.calls:
                fn = _enclosing_fn(mod, call)
                if fn is None or fn in out:
                    continue
                target = _local_target(ctx, mod, call, out)
                # A function that passes its argument on is a helper too, unless it decides the side
                # itself (it stores the vectors, searches with them, is named for one side).
                if (
                    target is not None
                    and _reads(mod, call, tainted(fn))
                    and own_side(mod, call) is None
                ):
                    out[fn] = dataclasses.replace(target, fn=fn)
                    grown = True
            if not grown:
                break
    mod.__dict__["_wrappers"] = out
    return out


def _methods(cls: ast.ClassDef) -> dict[str, _Fn]:
    return {s.name: s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _local_target(
    ctx: FileContext, mod: PyModule, call: ast.Call, found: dict[ast.AST, Wrapper]
) -> Wrapper | None:
    """The helper of this module that `call` calls: `helper(x)`, `self.helper(x)`, `obj.helper(x)` with
    `obj = Helper(...)` (or `self.obj = Helper(...)`) for a class of this module."""
    func = call.func
    if isinstance(func, ast.Name):
        fn = _top_level(mod).get(func.id)
        return found.get(fn) if fn is not None else None
    if not isinstance(func, ast.Attribute):
        return None
    cls = _class_of_receiver(ctx, mod, func.value)
    if isinstance(cls, ast.ClassDef):
        method = _methods(cls).get(func.attr)
        return found.get(method) if method is not None else None
    return None


def _class_of_receiver(ctx: FileContext, mod: PyModule, recv: ast.AST) -> ast.ClassDef | str | None:
    """The class an object is an instance of, when the module says so: `self` in a method (its class), a
    name or `self.attr` bound only to `C(...)`. A class of this module as a node; an imported name as str."""
    f = flow(ctx, mod)
    if isinstance(recv, ast.Name) and recv.id in ("self", "cls"):
        return f.class_of(recv)
    values: list[ast.AST] = []
    if isinstance(recv, ast.Attribute) and isinstance(recv.value, ast.Name) and recv.value.id in (
        "self", "cls"
    ):
        cls = f.class_of(recv)
        values = f.attrs().get((id(cls), recv.attr), []) if cls is not None else []
    elif isinstance(recv, ast.Name):
        bound, certain = mod.resolve_name(recv)
        values = [bound] if certain and bound is not None else []
    calls = [v for v in values if isinstance(v, ast.Call) and isinstance(v.func, ast.Name)]
    if not calls or len(calls) != len(values) or len({c.func.id for c in calls}) != 1:  # type: ignore[attr-defined]
        return None
    name = calls[0].func.id  # type: ignore[attr-defined]
    local = _top_level(mod).get(name)
    if isinstance(local, ast.ClassDef):
        return local
    return None if local is not None else name


def _imported_wrapper(ctx: FileContext, mod: PyModule, name: str, method: str | None) -> Wrapper | None:
    """`from helpers import embed` (method None) or `from models import Embedder` (a method of it): the
    helper in that module of the repository (one re-export through a package `__init__` followed)."""
    root = ctx.project.root
    imported = _imports_from(mod).get(name)
    if not root or imported is None:
        return None
    memo: dict[tuple[str, str | None], Wrapper | None] = mod.__dict__.setdefault("_imported_wrappers", {})
    if (name, method) in memo:  # one look into the other module per imported name, however many calls
        return memo[name, method]
    stmt, real = imported
    found = None
    for path in _module_files(mod, root, stmt.module or "", stmt.level):
        found = _wrapper_in(ctx, path, root, real, method, hops=1)
        if found is not None:
            break
    memo[name, method] = found
    return found






def _wrapper_in(
    ctx: FileContext, path: Path, root: str, name: str, method: str | None, hops: int
) -> Wrapper | None:
    other = repo_module(path, root)
    if other is None:
        return None
    other_ctx = FileContext(other.src, project=ctx.project)
    other_ctx._py, other_ctx._parsed = other, True
    for stmt in other.tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name and method is None:
            return wrappers(other_ctx, other).get(stmt) if _top_level(other).get(name) is stmt else None
        if isinstance(stmt, ast.ClassDef) and stmt.name == name and method is not None:
            fn = _methods(stmt).get(method)
            return wrappers(other_ctx, other).get(fn) if fn is not None else None
        if hops and isinstance(stmt, ast.ImportFrom) and any(
            (a.asname or a.name) == name for a in stmt.names
        ):  # a package __init__ re-exporting it
            real = next(a.name for a in stmt.names if (a.asname or a.name) == name)
            for p in _module_files(other, root, stmt.module or "", stmt.level):
                found = _wrapper_in(ctx, p, root, real, method, hops - 1)
                if found is not None:
                    return found
    return None


def wrapper_calls(ctx: FileContext, mod: PyModule) -> list[tuple[ast.Call, Wrapper]]:
    """Calls of helpers (this module's or imported) made outside any helper: where the texts are chosen."""
    cached = mod.__dict__.get("_wrapper_calls")
    if cached is not None:
        return cached
    local = wrappers(ctx, mod)
    out: list[tuple[ast.Call, Wrapper]] = []
    for call in mod.calls:
        if not (call.args or call.keywords):
            continue
        fn = _enclosing_fn(mod, call)
        if fn is not None and fn in local:
            continue  # passes its own argument on: its caller chooses
        target = _local_target(ctx, mod, call, local) if local else None
        if target is None:
            target = _imported_target(ctx, mod, call)
        if target is not None:
            out.append((call, target))
    mod.__dict__["_wrapper_calls"] = out
    return out


def _imported_target(ctx: FileContext, mod: PyModule, call: ast.Call) -> Wrapper | None:
    func = call.func
    if isinstance(func, ast.Name):
        if mod.bindings_of(mod.tree).get(func.id) == [None]:  # bound by an import only
            return _imported_wrapper(ctx, mod, func.id, None)
        return None
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and mod.bindings_of(mod.tree).get(func.value.id) == [None]:
            found = _module_wrapper(ctx, mod, func.value.id, func.attr)
            if found is not None:
                return found
        cls = _class_of_receiver(ctx, mod, func.value)
        if isinstance(cls, str):
            return _imported_wrapper(ctx, mod, cls, func.attr)
    return None


def _module_wrapper(ctx: FileContext, mod: PyModule, alias: str, name: str) -> Wrapper | None:
    """`import app.embed as emb` (or `from app import embed as emb`) ... `emb.get_embedding(text)`: the helper
    `get_embedding` of that module of the repository. A name imported twice resolves to nothing."""
    root = ctx.project.root
    if not root:
        return None
    memo: dict[tuple[str, str], Wrapper | None] = mod.__dict__.setdefault("_module_wrappers", {})
    if (alias, name) in memo:
        return memo[alias, name]
    candidates: list[list[Path]] = []
    for stmt in mod.tree.body:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.asname == alias or (a.asname is None and a.name == alias):
                    candidates.append(_module_files(mod, root, a.name, 0))
        elif isinstance(stmt, ast.ImportFrom):
            for a in stmt.names:
                if (a.asname or a.name) == alias:
                    sub = ".".join(p for p in (stmt.module or "", a.name) if p)
                    candidates.append(_module_files(mod, root, sub, stmt.level))
    found = None
    if len(candidates) == 1:
        for path in candidates[0]:
            found = _wrapper_in(ctx, path, root, name, None, hops=0)
            if found is not None:
                break
    memo[alias, name] = found
    return found


def helper_at(ctx: FileContext, mod: PyModule, node: ast.AST) -> Wrapper | None:
    """The helper of this module whose embedding call `node` is part of: inside the helper's body, or in the
    loader call of its model (a finding there is about every call of the helper)."""
    found = wrappers(ctx, mod)
    if not found:
        return None
    for p in [node, *mod.ancestors(node)]:  # a lookup per enclosing node: linear in the depth
        w = found.get(p)
        if w is not None and w.origin == (mod.src.path, w.fn.name, w.fn.lineno):
            return w  # (a helper of a helper is left out: the findings are about the inner one)
    return None


def register_calls(ctx: FileContext, mod: PyModule) -> None:
    """Record, once per module, the side each call of a Jina helper serves (whichever of the rules that use
    it runs first: with `--select JM201` the request's advice still hears from every call)."""
    if mod.__dict__.get("_helper_calls_registered") is ctx.project:
        return
    mod.__dict__["_helper_calls_registered"] = ctx.project
    for call, helper in wrapper_calls(ctx, mod):
        if kwarg(call, "task") is not None:
            continue
        if helper.inner is not None:
            if helper.inner.loader.legacy is None and not helper.inner.loader.v3:
                continue
        elif helper.model is None:
            continue
        start = mod.start(call.func)
        line = ctx.cell_map.position(start)[0] if ctx.cell_map is not None else ctx.src.position(start)[0]
        where = f"{ctx.src.path}:{line}"
        ctx.project.helper_uses.setdefault(helper.origin, []).append((where, infer_call(mod, call)))


def register_helper_finding(ctx: FileContext, helper: Wrapper, rebuild: Callable[[TaskGuess], None]) -> None:
    ctx.project.helper_findings.setdefault(helper.origin, []).append(rebuild)
