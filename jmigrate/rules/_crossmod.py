"""One embedder, several modules: created in one module, used for documents in a second and for queries in a
third (issue 12). Followed through the repository's imports so that JM501 and the task advice see every use.

While `plan` parses the Python files it records, per module, (1) the embedders it creates at module level
(`embeddings = OllamaEmbeddings(...)`), the functions that build and return one (`def get_embedder(): return
HuggingFaceEmbeddings(...)`) and the module-level functions/stores built on one (`def get_vector_db(): ...
Chroma(embedding_function=embeddings)`), and (2) its `from X import a, b` statements. After the walk every
module importing one of those names is read (parsed once, cached) and the uses of the imported name there are
the embedder's uses: `get_vector_db().add_documents(...)` stores documents, `.as_retriever()` searches.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path

from jmigrate.rules._calls import module_paths, repo_module
from jmigrate.rules._sites import Site, Sites
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.imports import module_key
from jmigrate.scan.python import dotted
from jmigrate.scan.tasks import PASSAGE, QUERY, UNCLEAR, TaskGuess, _inference, decide, infer_python

# Embedder kinds whose uses are followed (every integration that embeds both sides through one object).
KINDS = ("langchain", "llamaindex", "sentence-transformers", "transformers", "ollama", "llamaindex-hf",
         "langchain-hf", "chroma", "milvus", "fastembed")


@dataclass
class Export:
    site: Site
    handles: set[str] = field(default_factory=set)  # module-level names bound to it or to a store on it
    functions: set[str] = field(default_factory=set)  # module-level functions returning it / a store on it


@dataclass
class Imports:
    path: str  # relative to the root
    # (module, level, ((name, alias), ...)) of each module-level `from module import ...`
    froms: list[tuple[str, int, tuple[tuple[str, str], ...]]]


def imports_of(ctx: FileContext) -> Imports | None:
    mod = ctx.py
    if mod is None or ctx.cell_map is not None:
        return None
    froms = [
        (s.module or "", s.level, tuple((a.name, a.asname or a.name) for a in s.names))
        for s in mod.tree.body
        if isinstance(s, ast.ImportFrom)
    ]
    return Imports(ctx.src.path, froms) if froms else None


def exports_of(ctx: FileContext) -> list[Export]:
    """The embedders of this module that other modules can import (directly or through a function)."""
    mod = ctx.py
    if mod is None or ctx.cell_map is not None or not ctx.models:
        return []
    top_fns = {s.name: s for s in mod.tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = []
    for site in Sites(ctx, mod).of_kind(*KINDS):
        if site.model is None or site.model.replacement is None:
            continue
        export = Export(site)
        fn = mod.enclosing_function(site.call)
        target = mod.assigned_to(site.call)
        if fn is None and target and "." not in target:
            export.handles.add(target)
        elif fn is not None and top_fns.get(fn.name) is fn and _returns(fn, site.call, target):
            export.functions.add(fn.name)
        if export.handles:
            # Module-level stores built on it, and module-level functions that use it and return something.
            for stmt in mod.tree.body:
                if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
                    continue
                name = stmt.targets[0]
                if isinstance(name, ast.Name) and _reads(mod, stmt.value, export.handles):
                    export.handles.add(name.id)
            for fname, f in top_fns.items():
                if _reads(mod, f, export.handles) and any(
                    isinstance(n, ast.Return) and n.value is not None for n in ast.walk(f)
                ):
                    export.functions.add(fname)
        if export.handles or export.functions:
            out.append(export)
    return out


def _reads(mod: object, node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _returns(fn: ast.AST, call: ast.Call, target: str | None) -> bool:
    for n in ast.walk(fn):
        if isinstance(n, ast.Return) and n.value is not None:
            if n.value is call or (target and isinstance(n.value, ast.Name) and n.value.id == target):
                return True
    return False


@dataclass
class Followed:
    ctx: FileContext
    export: Export
    guess: TaskGuess
    files: list[str]  # the other modules that use it


def follow(
    exporters: list[tuple[FileContext, list[Export]]], imports: list[Imports], root: str
) -> list[Followed]:
    """Every exported embedder used in another module: its uses here and there, decided together."""
    out = []
    # Import statements by the last part of the module they name: each exporter looks only at those that
    # may name it (`from store.db import ...` for store/db.py), not at every import of the tree.
    by_key: dict[str, list[tuple[Imports, str, int, tuple[tuple[str, str], ...]]]] = {}
    for rec in imports:
        for module, level, aliases in rec.froms:
            by_key.setdefault(module.rsplit(".", 1)[-1], []).append((rec, module, level, aliases))
    for ctx, exports in exporters:
        here = os.path.normpath(os.path.join(root, ctx.src.path))
        found_by: dict[str, tuple[Imports, dict[str, str]]] = {}  # importer path -> (record, alias -> name)
        for rec, module, level, aliases in by_key.get(module_key(ctx.src.path), []):
            if rec.path == ctx.src.path:
                continue
            if any(os.path.normpath(p) == here for p in module_paths(rec.path, root, module, level)):
                names = found_by.setdefault(rec.path, (rec, {}))[1]
                names.update({alias: name for name, alias in aliases})
        users = list(found_by.values())
        if not users:
            continue
        mod = ctx.py
        assert mod is not None
        for export in exports:
            own = infer_python(mod, export.site.call).signals
            signals = list(own)
            files = []
            for rec, names in users:
                handles = {a for a, n in names.items() if n in export.handles}
                functions = {a for a, n in names.items() if n in export.functions}
                if not handles and not functions:
                    continue
                other = repo_module(Path(root, rec.path), root)
                if other is None:
                    continue
                inf = _inference(other)
                found = inf.signals_for({inf.qual(h, other.tree) for h in handles}, functions)
                if found:
                    files.append(rec.path)
                    signals += [(t, f"{rec.path}: {r}") for t, r in found]
            if files:
                out.append(Followed(ctx, export, decide(signals), files))
    return out


def unclear(rec: dict[str, object]) -> bool:
    reason = rec.get("task_reason")
    return isinstance(reason, str) and reason == UNCLEAR


class CrossModule:
    """What `plan` records while it parses the Python files, and the findings it adds after the walk."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.imports: list[Imports] = []
        self.exporters: list[tuple[FileContext, list[Export]]] = []
        # LlamaIndex's process-wide Settings.embed_model set to a v2 embedder, and the files building indexes
        self.globals: list[tuple[FileContext, Site]] = []
        self.index_users: list[FileContext] = []

    def see(self, ctx: FileContext) -> bool:
        """Record what this parsed file exports and imports; True when findings may be added to it later."""
        if ctx.language != "python" or ctx.py is None:
            return False
        keep = False
        text = ctx.src.text
        if ("VectorStoreIndex" in text or "load_index_from_storage" in text) and len(self.index_users) < 2000:
            self.index_users.append(ctx)  # LlamaIndex indexes: users of a global Settings.embed_model
        if ctx.models and "Settings.embed_model" in text:
            found = _global_embedders(ctx)
            self.globals += [(ctx, site) for site in found]
            keep = bool(found)
        if ctx.cell_map is not None:
            return keep
        rec = imports_of(ctx)
        if rec is not None:
            self.imports.append(rec)
        exports = exports_of(ctx)
        if exports:
            self.exporters.append((ctx, exports))
        return keep or bool(exports)

    def finish(self, findings: list[Finding], report_jm501: bool) -> list[tuple[FileContext, Finding]]:
        """Give the embedders' findings the task their uses in other modules say, and return the JM501
        findings of embedders that serve both sides across modules."""
        followed = follow(self.exporters, self.imports, self.root) if self.exporters and self.imports else []
        followed += self._global_uses()
        if not followed:
            return []
        from jmigrate.rules.jm501_embedder_used_for_queries_and_documents import FIX
        from jmigrate.rules.registry import get_rule
        from jmigrate.scan.tasks import recommendation

        added: list[tuple[FileContext, Finding]] = []
        by_path: dict[str, list[Finding]] = {}
        for f in findings:
            by_path.setdefault(f.path, []).append(f)
        for done in followed:
            ctx, site, guess = done.ctx, done.export.site, done.guess
            lo, hi = site.call.lineno, site.call.end_lineno or site.call.lineno
            mine = [f for f in by_path.get(ctx.src.path, []) if lo <= f.line <= hi or _model_line(f, site)]
            for f in mine:
                if unclear(f.recommendation):
                    f.recommendation["task"] = guess.task
                    f.recommendation["task_reason"] = guess.reason
                    if guess.task is None:
                        f.recommendation["tasks"] = {"documents": PASSAGE, "queries": QUERY}
                    else:
                        f.recommendation.pop("tasks", None)
            assert site.model is not None
            if not (report_jm501 and guess.both_sides and site.kind in FIX):
                continue
            if any(f.code == "JM501" for f in mine):
                continue  # its own module already shows both sides
            mod = ctx.py
            assert mod is not None
            start, end = mod.span(site.call.func)
            rule = get_rule("JM501")
            finding = ctx.finding(
                start,
                end,
                f"one {site.model.name} embedder serves documents and queries across modules "
                f"({', '.join(done.files)}): {guess.reason}",
                FIX[site.kind],
                Applicability.MANUAL,
                (),
                recommendation(site.model, guess),
            )
            finding.code, finding.rule = rule.code, rule.name
            added.append((ctx, finding))
        return added


    def _global_uses(self) -> list[Followed]:
        """Settings.embed_model = <v2 embedder> in one file; the indexes other files build use it."""
        out = []
        for ctx, site in self.globals:
            mod = ctx.py
            assert mod is not None
            signals = list(infer_python(mod, site.call).signals)
            files = []
            for user in self.index_users:
                other = user.py
                if user is ctx or other is None or user.src.path == ctx.src.path:
                    continue
                inf = _inference(other)
                found = inf.signals_for({inf.qual("Settings.embed_model", other.tree)}, set())
                if found:
                    files.append(user.src.path)
                    signals += [(t, f"{user.src.path}: {r}") for t, r in found]
            if files:
                out.append(Followed(ctx, Export(site), decide(signals), files))
        return out


def _global_embedders(ctx: FileContext) -> list[Site]:
    """Embedders assigned (directly or through a name) to LlamaIndex's Settings.embed_model."""
    mod = ctx.py
    assert mod is not None
    sites = Sites(ctx, mod).of_kind(*KINDS)
    out = []
    for a in mod.of_type(ast.Assign):
        if not any(dotted(t).endswith("Settings.embed_model") for t in a.targets):
            continue
        for site in sites:
            if site.model is None or site.model.replacement is None:
                continue
            target = mod.assigned_to(site.call)
            if a.value is site.call or (
                target and isinstance(a.value, ast.Name) and a.value.id == target
            ):
                out.append(site)
    return out


def _model_line(f: Finding, site: Site) -> bool:
    node = site.model_node
    return node is not None and getattr(node, "lineno", -1) == f.line
