"""Task inference: which v3 task a v2 call site needs, decided from how its vectors are used, with the reason.

Stored documents -> retrieval.passage, searched queries -> retrieval.query, clustering -> separation,
classifiers -> classification, similarity/dedup -> text-matching. The analysis is per file and by name
(no type inference): good enough to explain itself, and it says so when it cannot tell.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jmigrate.models import LICENCE_V3_NOTE, MODELS, V3, Model
from jmigrate.scan.memo import per_text
from jmigrate.scan.python import PyModule, call_name, dotted, last_part

QUERY, PASSAGE = "retrieval.query", "retrieval.passage"
SEPARATION, CLASSIFICATION, MATCHING = "separation", "classification", "text-matching"

# Methods of an embedder object whose name says which side they embed.
QUERY_METHODS = {
    "embed_query",
    "aembed_query",
    "get_query_embedding",
    "aget_query_embedding",
    "encode_queries",
    "encode_query",
    "query_embed",
    "embedQuery",
}
PASSAGE_METHODS = {
    "embed_documents",
    "aembed_documents",
    "get_text_embedding_batch",
    "aget_text_embedding_batch",
    "encode_corpus",
    "encode_documents",
    "passage_embed",
    "embedDocuments",
}
# Methods that embed whatever they are given: the argument and the result's use decide.
GENERIC_METHODS = {
    "encode",
    "embed",
    "get_text_embedding",
    "aget_text_embedding",
    "embed_texts",
    "__call__",
    "create",
    "post",
    "embed_text",
}
# Calls that receive an embedder and store documents with it / search with it.
STORE_CALLS = {
    "from_documents",
    "from_texts",
    "afrom_documents",
    "afrom_texts",
    "add_texts",
    "add_documents",
    "aadd_documents",
    "aadd_texts",
    "upsert",
    "from_embeddings",
    "build_index",
}
SEARCH_CALLS = {
    "similarity_search",
    "similarity_search_with_score",
    "asimilarity_search",
    "max_marginal_relevance_search",
    "similarity_search_by_vector",
    "as_retriever",
    "as_query_engine",
    "as_chat_engine",
    "get_relevant_documents",
    "invoke",
    "ainvoke",
    "retrieve",
    "query",
    "search",
    "knn_search",
    "similaritySearch",
    "asRetriever",
}
# Calls that build a vector store around the embedder: the store embeds later queries with it too.
STORE_BUILDERS = {"from_documents", "from_texts", "afrom_documents", "afrom_texts"}
# Consumers of vectors, by the last part of the called name (or the class the object was made from).
CLUSTERING = {
    "KMeans",
    "MiniBatchKMeans",
    "HDBSCAN",
    "DBSCAN",
    "OPTICS",
    "AgglomerativeClustering",
    "SpectralClustering",
    "Birch",
    "MeanShift",
    "UMAP",
    "TSNE",
    "fit_predict",
    "linkage",
    "hdbscan",
}
CLASSIFIERS = {
    "LogisticRegression",
    "SVC",
    "LinearSVC",
    "RandomForestClassifier",
    "KNeighborsClassifier",
    "MLPClassifier",
    "SGDClassifier",
    "GradientBoostingClassifier",
    "RidgeClassifier",
    "XGBClassifier",
    "LGBMClassifier",
    "predict",
    "predict_proba",
}
SIMILARITY = {
    "cosine_similarity",
    "cos_sim",
    "pytorch_cos_sim",
    "dot_score",
    "paraphrase_mining",
    "community_detection",
    "pairwise_distances",
    "cosine",
    "dot",
    "cdist",
    "inner",
    "matmul",
}
# Plain vector products: they score, they do not say whether queries meet documents or texts meet texts.
PRODUCTS = {"dot", "matmul", "inner", "einsum"}
INDEX_ADD = {
    "add",
    "add_with_ids",
    "upsert",
    "insert",
    "add_items",
    "index",
    "bulk",
    "add_embeddings",
    "write_documents",
    "put",
}
INDEX_SEARCH = {"search", "knn_query", "query", "query_points", "search_points", "knn", "kneighbors"}

_QUERY_WORDS = re.compile(r"(?i)quer(y|ies)|question|search|retriev|lookup|ask")
_PASSAGE_WORDS = re.compile(
    r"(?i)doc(ument)?s?\b|document|passage|corpus|chunk|ingest|index(ing)?\b|upsert|store|"
    r"article|page"
)
_CLASS_WORDS = re.compile(r"(?i)label|categor|classif|intent|sentiment")
_CLUSTER_WORDS = re.compile(r"(?i)cluster|topic|visuali[sz]|umap|tsne|t_sne")
_MATCH_WORDS = re.compile(r"(?i)dedup|duplicate|similar|paraphrase|sts\b|match")

_WORD_TASKS = (
    (_CLUSTER_WORDS, SEPARATION),
    (_CLASS_WORDS, CLASSIFICATION),
    (_MATCH_WORDS, MATCHING),
    (_QUERY_WORDS, QUERY),
    (_PASSAGE_WORDS, PASSAGE),
)


@dataclass
class TaskGuess:
    task: str | None  # None: unclear, or both retrieval sides (see `both_sides`)
    reason: str
    signals: list[tuple[str, str]] = field(default_factory=list)  # (task, reason) in source order

    @property
    def both_sides(self) -> bool:
        tasks = {t for t, _ in self.signals}
        return QUERY in tasks and PASSAGE in tasks


UNCLEAR = (
    "no use of the vectors found in this file: use retrieval.passage for the documents you store "
    "and retrieval.query for the queries you search with (text-matching for symmetric similarity)"
)


def decide(signals: list[tuple[str, str]]) -> TaskGuess:
    if not signals:
        return TaskGuess(None, UNCLEAR, [])
    tasks = Counter(t for t, _ in signals)
    first = {t: r for t, r in reversed(signals)}
    if QUERY in tasks and PASSAGE in tasks:
        return TaskGuess(
            None,
            f"used for both sides: {first[PASSAGE]} (retrieval.passage) and {first[QUERY]} "
            "(retrieval.query); asymmetric retrieval needs one embedder per side",
            signals,
        )
    # Retrieval beats the generic hints; among the others the most frequent wins (ties: source order).
    for task in (PASSAGE, QUERY):
        if task in tasks:
            return TaskGuess(task, first[task], signals)
    best = max(tasks, key=lambda t: (tasks[t], -[s for s, _ in signals].index(t)))
    others = [f"{first[t]} ({t})" for t in first if t != best]
    reason = first[best] + ("; other uses: " + "; ".join(others) if others else "")
    return TaskGuess(best, reason, signals)


# --- Python -------------------------------------------------------------------------------------------


def _consumer_task(name: str, owner: str, n_args: int) -> str | None:
    """`owner`: the call the receiver was built from (`km.fit(...)` -> "KMeans"), "" when unknown."""
    parts = [p.removesuffix("()") for p in name.split(".")]
    last = parts[-1]
    words = {*parts, last_part(owner)}
    if words & CLUSTERING:
        return SEPARATION
    if words & CLASSIFIERS or (last == "fit" and n_args >= 2 and not words & CLUSTERING):
        return CLASSIFICATION
    if last in SIMILARITY or words & {"cos_sim", "cosine_similarity"}:
        return MATCHING
    if last in INDEX_SEARCH:
        return QUERY
    if last in INDEX_ADD:
        return PASSAGE
    return None


def _retrieval_names(names: Iterable[str]) -> bool:
    """Whether the names read by a vector product say queries against documents."""
    words = " ".join(sorted(names))
    return bool(_QUERY_WORDS.search(words) or _PASSAGE_WORDS.search(words))



def _word_task(word: str) -> str | None:
    for regex, task in _WORD_TASKS:
        if regex.search(word):
            return task
    return None


@dataclass(frozen=True)
class _CallInfo:
    index: int  # position in `mod.calls` (walk order)
    call: ast.Call
    name: str
    last: str
    receiver: str  # qualified by scope (see _PyInference.qual)
    args_read: frozenset[str]  # qualified
    start: int


class _PyInference:
    """Per-module indexes built once, so each call site's inference looks only at the calls that involve
    its names (looking at every call of the module for every finding made `plan` quadratic)."""

    def __init__(self, mod: PyModule) -> None:
        self.mod = mod
        self.nested = False  # answering for a caller in another module: no further hop
        self.callee_memo: dict[object, list[tuple[str, str]]] = {}
        self.constructors: dict[str, str] = {}
        self.assigned: dict[str, list[ast.AST]] = {}
        self.infos: list[_CallInfo] = []
        self.by_receiver: dict[str, list[int]] = {}
        self.by_arg: dict[str, list[int]] = {}
        self.by_last: dict[str, list[int]] = {}
        self.by_any_name: dict[str, list[int]] = {}
        # Names assigned from a call that reads a name's attributes (root prefix) or takes it as argument.
        self.derived_by_root: dict[str, set[str]] = {}
        self.derived_by_arg: dict[str, set[str]] = {}
        store_positions: dict[str, list[int]] = {}
        for stored in mod.of_type(ast.Name):
            if isinstance(stored.ctx, ast.Store):
                store_positions.setdefault(self.qual(stored.id, stored), []).append(mod.start(stored))
        self.store_positions = {k: sorted(v) for k, v in store_positions.items()}
        for i, node in enumerate(mod.calls):
            name = call_name(node)
            parts = name.split(".")
            arg_nodes = [*node.args, *(k.value for k in node.keywords)]
            raw_args = frozenset().union(*(mod.names_in(a) for a in arg_nodes)) if arg_nodes else frozenset()
            args_read = frozenset(self.qual(n, node) for n in raw_args)
            receiver = ".".join(parts[:-1])
            info = _CallInfo(i, node, name, parts[-1].removesuffix("()"),
                             self.qual(receiver, node) if receiver else "", args_read, mod.start(node))
            self.infos.append(info)
            self.by_receiver.setdefault(info.receiver, []).append(i)
            self.by_last.setdefault(info.last, []).append(i)
            for n in args_read:
                self.by_arg.setdefault(n, []).append(i)
            for n in mod.names_in(node):
                self.by_any_name.setdefault(self.qual(n, node), []).append(i)
            target = mod.assigned_to(node)
            if target:
                target = self.qual(target, node)
                self.constructors.setdefault(target, name)
                self.assigned.setdefault(target, []).append(node)
                root = dotted(node.func)
                pieces = root.split(".") if root else []
                for k in range(1, len(pieces) + 1):
                    self.derived_by_root.setdefault(self.qual(".".join(pieces[:k]), node), set()).add(target)
                for n in args_read:
                    self.derived_by_arg.setdefault(n, set()).add(target)
        for positions in self.by_any_name.values():
            positions.sort(key=lambda i: self.infos[i].start)
        # Calls of functions by (name, owner class): a method `embed` of class E is called as self.embed()
        # inside E or on an object built by E(...); a plain function by its bare name. (Looking at every call
        # named `embed` made a module with many classes quadratic.)
        self.by_callee: dict[tuple[str, str], list[int]] = {}
        defs: list[ast.FunctionDef | ast.AsyncFunctionDef] = [
            *mod.of_type(ast.FunctionDef), *mod.of_type(ast.AsyncFunctionDef)
        ]
        self.defined = Counter(f.name for f in defs)
        for i, info in enumerate(self.infos):
            owner = ""
            if info.receiver:
                bare = info.receiver.split(":", 1)[-1]
                if bare in ("self", "cls"):
                    cls = next((p for p in mod.ancestors(info.call) if isinstance(p, ast.ClassDef)), None)
                    owner = cls.name if cls is not None else "?"
                else:
                    ctor = self.constructors.get(info.receiver, "")
                    owner = last_part(ctor) if ctor else "?"
            self.by_callee.setdefault((info.last, owner), []).append(i)
        # LlamaIndex's global `Settings.embed_model = emb` (and ServiceContext.set_global_service_context):
        # every index built without its own embed_model embeds its nodes and its queries with `emb`.
        self.global_embedders: list[frozenset[str]] = []
        for a in mod.of_type(ast.Assign):
            if any(dotted(t).endswith("Settings.embed_model") for t in a.targets):
                self.global_embedders.append(frozenset(self.qual(n, a) for n in mod.names_in(a.value)))
        for k in self.by_last.get("set_global_service_context", []):
            self.global_embedders.append(self.infos[k].args_read)
        self.index_builders = [
            i for i, info in enumerate(self.infos)
            if "VectorStoreIndex" in info.name
            or info.last in ("load_index_from_storage", "from_vector_store")
            or (info.last in STORE_BUILDERS and info.receiver.endswith("Index"))
        ]
        # `for i, vec in enumerate(vectors)`: the loop's names hold the vectors too (by the iterated name).
        self.loop_targets: dict[str, set[str]] = {}
        loops: list[ast.For | ast.AsyncFor | ast.comprehension] = [
            *mod.of_type(ast.For), *mod.of_type(ast.AsyncFor), *mod.of_type(ast.comprehension)
        ]
        for loop in loops:
            targets = {self.qual(n.id, n) for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
            for n in mod.names_in(loop.iter):
                self.loop_targets.setdefault(self.qual(n, loop.iter), set()).update(targets)
        self.matmuls = [
            (b, frozenset(self.qual(n, b) for n in mod.names_in(b)))
            for b in mod.of_type(ast.BinOp)
            if isinstance(b.op, ast.MatMult)
        ]

    def _callee_signals(self, call: ast.Call, handles: set[str]) -> list[tuple[str, str]]:
        """`VectorStoreService(embedding_function=emb)` / `build_index(emb)` imported from a module of the
        repository: the signals of that parameter's uses there (one hop), with the module's path."""
        from jmigrate.rules._calls import _imports_from

        mod = self.mod
        root = mod.__dict__.get("project_root")
        assert isinstance(call.func, ast.Name)
        imported = _imports_from(mod).get(call.func.id)
        if not root or imported is None:
            return []
        stmt, real = imported
        positions = [i for i, a in enumerate(call.args) if self._reads_handle(a, call, handles)]
        keywords = {
            k.arg for k in call.keywords if k.arg is not None and self._reads_handle(k.value, call, handles)
        }
        key = (id(call), tuple(positions), frozenset(keywords))
        if key not in self.callee_memo:  # asked again for every finding on the same embedder
            self.callee_memo[key] = self._callee_signals_uncached(stmt, real, root, positions, keywords)
        return self.callee_memo[key]

    def _callee_signals_uncached(
        self, stmt: ast.ImportFrom, real: str, root: str, positions: list[int], keywords: set[str]
    ) -> list[tuple[str, str]]:
        from jmigrate.rules._calls import module_paths, repo_module

        mod = self.mod
        for path in module_paths(mod.src.path, root, stmt.module or "", stmt.level):
            other = repo_module(path, root)
            if other is None:
                continue
            target = next((d for d in other.tree.body if getattr(d, "name", None) == real), None)
            fn: ast.FunctionDef | ast.AsyncFunctionDef | None
            if isinstance(target, ast.ClassDef):
                fn = next(
                    (d for d in target.body if isinstance(d, ast.FunctionDef) and d.name == "__init__"), None
                )
                skip = 1
            elif isinstance(target, (ast.FunctionDef, ast.AsyncFunctionDef)):
                fn, skip = target, 0
            else:
                continue
            if fn is None or not fn.body:
                return []
            params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]][skip:]
            chosen = {params[i] for i in positions if i < len(params)} | (
                keywords & {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]}
            )
            if not chosen:
                return []
            inf = _inference(other)
            at = fn.body[0]
            there = {inf.qual(p, at) for p in chosen}
            for node in ast.walk(fn):  # self.emb = emb in __init__: the attribute is the handle there
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and (
                    node.value.id in chosen
                ):
                    there |= {inf.qual(dotted(t), at) for t in node.targets if dotted(t).startswith("self.")}
            inf.nested = True
            try:
                found = inf.signals_for(there, set())
            finally:
                inf.nested = False
            return [(t, f"{other.src.path}: {r}") for t, r in found]
        return []

    def _reads_handle(self, node: ast.AST, call: ast.Call, handles: set[str]) -> bool:
        return any(self.qual(n, call) in handles for n in self.mod.names_in(node))

    def qual(self, name: str, at: ast.AST) -> str:
        """`name` as read at `at`, made unique by the scope that binds its first part: `r` in one function
        and `r` in another are two variables (treating them as one made every finding of a module look at
        every other function's calls). `self.x` / `cls.x` belong to the class."""
        root = name.split(".", 1)[0].removesuffix("()")
        mod = self.mod
        if root in ("self", "cls"):
            scope: ast.AST = next((p for p in mod.ancestors(at) if isinstance(p, ast.ClassDef)), mod.tree)
            return f"{id(scope)}:{name}"
        scope = mod.scope_of(at)
        first = True
        while True:
            if (first or not isinstance(scope, ast.ClassDef)) and root in mod.bindings_of(scope):
                return f"{id(scope)}:{name}"
            if isinstance(scope, ast.Module):
                return f"{id(scope)}:{name}"
            first, scope = False, mod.scope_of(scope)

    def _calls(self, index: dict[str, list[int]], names: Iterable[str]) -> list[_CallInfo]:
        found = sorted({i for n in names for i in index.get(n, ())})
        return [self.infos[i] for i in found]

    def handles_for(self, node: ast.AST) -> tuple[set[str], set[str]]:
        """(names bound to the embedder/call result, names of functions that return its vectors)."""
        mod = self.mod
        handles: set[str] = set()
        functions: set[str] = set()
        start = node if isinstance(node, ast.Call) else mod.enclosing_call(node)
        if isinstance(node, ast.Constant):
            target = mod.assigned_to(node)
            if target:  # MODEL = "jina-embeddings-v2-base-en": follow the calls that use MODEL
                target = self.qual(target, node)
                # ... until MODEL is assigned again (a notebook reassigning it in every cell holds many
                # values in turn; each one is used by the calls that follow it).
                here = mod.start(node)
                later = self.store_positions.get(target, [])
                k = bisect.bisect_right(later, here)
                nxt = later[k] if k < len(later) else len(mod.src.text)
                uses = self.by_any_name.get(target, [])
                starts = [self.infos[i].start for i in uses]
                for i in uses[bisect.bisect_left(starts, here) : bisect.bisect_left(starts, nxt)]:
                    call = self.infos[i].call
                    if call is not start:
                        handles |= self.handles_for(call)[0]
                        functions |= self._returning_functions(call)
        if start is not None:
            # Climb nested calls: SentenceTransformer(...).encode(...) or requests.post(...).json()
            outer: ast.AST = start
            for p in mod.ancestors(start):
                if isinstance(p, (ast.Call, ast.Attribute, ast.Subscript, ast.Await)):
                    outer = p
                    continue
                if isinstance(p, (ast.ListComp, ast.GeneratorExp)) and p.elt is outer:
                    outer = p  # vecs = [embed(t) for t in texts]: vecs holds the vectors
                    continue
                break
            for candidate in (start, outer):
                target = mod.assigned_to(candidate)
                if target:
                    handles.add(self.qual(target, candidate))
            functions |= self._returning_functions(start)
        # Names assigned from a handle-derived value through one more hop (resp = post(); data = resp.json())
        for _ in range(2):
            # Built from the embedder (a vector store) or derived from its output (vectors).
            for h in list(handles):
                handles |= self.derived_by_root.get(h, set()) | self.derived_by_arg.get(h, set())
                handles |= self.loop_targets.get(h, set())
        return handles, functions

    def _reads_root(self, call: ast.AST, names: set[str]) -> bool:
        node = call.func if isinstance(call, ast.Call) else call
        root = dotted(node)
        return any(root == n or root.startswith(n + ".") for n in names)

    def _takes(self, call: ast.AST, names: set[str]) -> bool:
        if not isinstance(call, ast.Call):
            return False
        return any(self.mod.names_in(a) & names for a in [*call.args, *(k.value for k in call.keywords)])

    def _returning_functions(self, node: ast.AST) -> set[str]:
        """The function around `node`: "name" for a function, "Class.name" for a method."""
        fn = self.mod.enclosing_function(node)
        if fn is None:
            return set()
        parent = self.mod.parent(fn)
        return {f"{parent.name}.{fn.name}"} if isinstance(parent, ast.ClassDef) else {fn.name}

    def _function_calls(self, functions: set[str]) -> list[_CallInfo]:
        """Calls of `functions` ("name" or "Class.name", see _returning_functions), in walk order."""
        found: set[int] = set()
        for f in functions:
            owner, _, name = f.rpartition(".")
            found.update(self.by_callee.get((name, owner), ()))
            if self.defined[name] == 1:  # one function of that name here: obj.name() on any object is it
                found.update(self.by_callee.get((name, "?"), ()))
        return [self.infos[i] for i in sorted(found)]

    def where(self, node: ast.AST) -> str:
        return self.mod.src.where(self.mod.start(node))

    def signals(self, node: ast.AST, follow_callers: bool = True) -> list[tuple[str, str]]:
        handles, functions = self.handles_for(node)
        if not follow_callers:
            functions = set()
        return self.signals_for(handles, functions)

    def signals_for(self, handles: set[str], functions: set[str]) -> list[tuple[str, str]]:
        """Signals of the calls that use `handles` (qualified names of the embedder, its stores and vectors)
        or call `functions` (which return them)."""
        mod = self.mod
        handles = set(handles)
        forced: set[int] = set()  # index builders that use the embedder through LlamaIndex's Settings
        if any(h & handles for h in self.global_embedders) or any(
            h.split(":", 1)[-1].endswith("Settings.embed_model") for h in handles
        ):
            forced = set(self.index_builders)
            for i in forced:
                target = mod.assigned_to(self.infos[i].call)
                if target:
                    handles.add(self.qual(target, self.infos[i].call))
            for _ in range(2):
                for h in list(handles):
                    handles |= self.derived_by_root.get(h, set()) | self.derived_by_arg.get(h, set())
        # Vectors produced by calling a function that wraps the call site: vecs = embed(texts)
        grown = False
        called = self._function_calls(functions)
        wrapping = {info.index for info in called}
        for info in called:
            target = mod.assigned_to(info.call)
            if target:
                handles.add(self.qual(target, info.call))
                grown = True
            fname = info.name.rsplit(".", 1)[-1].removesuffix("()")
            # its result used in place: get_db().add_documents(...), Chroma(embedding_function=get_emb())
            handles |= {self.qual(fname + "()", info.call), self.qual(fname, info.call)}
            grown = True
        if grown:  # what is built from those results (a retriever from a store a factory returned)
            for _ in range(2):
                for h in list(handles):
                    handles |= self.derived_by_root.get(h, set()) | self.derived_by_arg.get(h, set())
        out: list[tuple[int, str, str]] = []
        weak: list[tuple[int, str, str]] = []  # guesses from names, used only when nothing else says
        added: dict[str, tuple[int, str]] = {}  # vectors stored in / searched against an index, by name
        searched: dict[str, tuple[int, str]] = {}
        candidates = sorted(
            {*self._calls(self.by_receiver, handles), *self._calls(self.by_arg, handles),
             *called, *(self.infos[i] for i in forced)},
            key=lambda c: c.index,
        )
        for info in candidates:
            call, name, last, args_read = info.call, info.name, info.last, info.args_read
            on_handle = info.receiver in handles
            uses_handle = bool(args_read & handles) or info.index in forced
            wraps = info.index in wrapping
            if not (on_handle or uses_handle or wraps):
                continue
            pos, at = mod.start(call), self.where(call)
            if uses_handle and isinstance(call.func, ast.Name) and not self.nested:
                # Handed to a function or class of another module of the repository: its uses there count.
                out += [(pos, t, r) for t, r in self._callee_signals(call, handles)]
            if on_handle and last in QUERY_METHODS:
                out.append((pos, QUERY, f"{name}() on {at} embeds queries"))
            elif on_handle and last in PASSAGE_METHODS:
                out.append((pos, PASSAGE, f"{name}() on {at} embeds documents"))
            elif on_handle and last in SEARCH_CALLS:
                out.append((pos, QUERY, f"{name}() on {at} searches with queries"))
            elif (on_handle or uses_handle) and (last in STORE_CALLS or last == "VectorStoreIndex"):
                out.append((pos, PASSAGE, f"{name}() on {at} stores documents"))
                if uses_handle and last in STORE_BUILDERS or "VectorStoreIndex" in name:
                    # A store built on the embedder embeds its queries with that same instance. Sorted after
                    # every explicit signal so a real query call, if any, is the one quoted.
                    out.append(
                        (
                            len(mod.src.text) + pos,
                            QUERY,
                            f"the store built by {name}() on {at} embeds queries with the same instance",
                        )
                    )
            elif uses_handle and last in SEARCH_CALLS:
                for var in args_read & handles:
                    searched.setdefault(var, (pos, f"{name}() on {at}"))
                out.append((pos, QUERY, f"{name}() on {at} searches with queries"))
            elif (
                uses_handle
                and (task := _consumer_task(name, self.constructors.get(info.receiver, ""), len(call.args)))
                # np.dot(doc_vecs, query_vec) is retrieval, like `doc_vecs @ query_vec` (below)
                and not (last in PRODUCTS and _retrieval_names(args_read))
            ):
                what = {
                    SEPARATION: "vectors passed to",
                    CLASSIFICATION: "vectors passed to classifier",
                    MATCHING: "vectors compared with",
                    QUERY: "vectors searched with",
                    PASSAGE: "vectors stored with",
                }[task]
                if task in (QUERY, PASSAGE):
                    for var in args_read & handles:
                        (searched if task == QUERY else added).setdefault(var, (pos, f"{name}() on {at}"))
                out.append((pos, task, f"{what} {name}() on {at}"))
            elif (on_handle and last in GENERIC_METHODS) or wraps:
                # What is being embedded? Judge by the argument's and the enclosing function's names.
                words = [dotted(a) for a in call.args] + [k.arg or "" for k in call.keywords]
                fn = mod.enclosing_function(call)
                for word, kind in [
                    *((w, "argument") for w in words if w),
                    *([(fn.name, "function")] if fn else []),
                ]:
                    task = _word_task(word)
                    if task:
                        weak.append((pos, task, f"{name}() on {at} embeds {word!r} ({kind} name)"))
                        break
        # The same vectors stored in an index and searched against it: symmetric similarity, not retrieval.
        for var in added.keys() & searched.keys():
            (p1, a), (p2, b) = added[var], searched[var]
            out = [o for o in out if o[0] not in (p1, p2)]
            shown = var.split(":", 1)[1]  # without the scope qualifier
            out.append((p1, MATCHING, f"the same vectors ({shown}) are stored by {a} and searched by {b}"))
        # A matrix product (a @ b.T) scores vectors against each other: brute-force retrieval as often as
        # symmetric similarity. It is weak evidence (a guess like a name), and none at all when the operands'
        # names say query/document (`doc_vecs @ query_vec` is retrieval: the guide's retrieval tasks).
        for node_, names in self.matmuls:
            if names & handles:
                if _retrieval_names(names):
                    continue
                weak.append((mod.start(node_), MATCHING, f"vectors compared with '@' on {self.where(node_)}"))
        return [(t, r) for _, t, r in sorted(out or weak)]


def _inference(mod: PyModule) -> _PyInference:
    found = mod.__dict__.get("_task_inference")
    if found is None:
        found = mod.__dict__["_task_inference"] = _PyInference(mod)
    return found


# Components whose class already says which side they embed.
CLASS_TASKS = {
    "JinaTextEmbedder": QUERY,
    "JinaDocumentEmbedder": PASSAGE,
    "SentenceTransformersTextEmbedder": QUERY,
    "SentenceTransformersDocumentEmbedder": PASSAGE,
}


def infer_python(mod: PyModule, node: ast.AST, follow_callers: bool = True) -> TaskGuess:
    """Infer the task for the embedder/request/model string at `node` (without `follow_callers`, from its own
    function only: not from the calls of the function that holds it)."""
    call = node if isinstance(node, ast.Call) else mod.enclosing_call(node)
    cls = last_part(call_name(call)) if call is not None else ""
    if cls in CLASS_TASKS:
        side = "queries" if CLASS_TASKS[cls] == QUERY else "documents"
        return decide([(CLASS_TASKS[cls], f"{cls} embeds {side}")])
    signals = _inference(mod).signals(node, follow_callers)
    if not signals:
        fn = mod.enclosing_function(node)
        task = _word_task(fn.name) if fn else None
        if fn and task:
            return decide([(task, f"called in function {fn.name}()")])
    return decide(signals)


_CONTAINERS = (ast.List, ast.Tuple, ast.Dict, ast.Set, ast.keyword, ast.Starred, ast.ListComp,
               ast.GeneratorExp, ast.comprehension)


def _consumer_around(mod: PyModule, call: ast.Call) -> tuple[str, str] | None:
    """The side of an embedding call written inside the call that consumes its vectors:
    `qdrant.upsert(points=[PointStruct(vector=embed(text))])`, `index.search(embed(question), k)`."""
    node: ast.AST = call
    for _ in range(6):  # a few containers and calls out (a point built around the vector, say)
        parent = mod.parent(node)
        if parent is None or isinstance(parent, ast.stmt):
            return None
        if isinstance(parent, ast.Call) and node is not parent.func:
            name = call_name(parent)
            last = last_part(name).removesuffix("()")
            at = mod.src.where(mod.start(parent))
            if last in STORE_CALLS or last in INDEX_ADD:
                return PASSAGE, f"{name}() on {at} stores the vectors"
            if last in SEARCH_CALLS or last in INDEX_SEARCH:
                return QUERY, f"{name}() on {at} searches with the vector"
            task = _consumer_task(name, "", len(parent.args))
            if task is not None:
                return task, f"vectors passed to {name}() on {at}"
        elif not isinstance(parent, (ast.Call, *_CONTAINERS)):
            return None
        node = parent
    return None


def own_side(mod: PyModule, call: ast.Call) -> str | None:
    """The side an embedding call serves by what its own function does with the vectors (stores them, searches
    with them, a function named for one side), not by who calls that function."""
    direct = _consumer_around(mod, call)
    return direct[0] if direct is not None else infer_python(mod, call, follow_callers=False).task


def infer_call(mod: PyModule, call: ast.Call) -> TaskGuess:
    """The task for one embedding call (`model.encode(x)`): how its vectors are used, else the names of what
    it embeds and of what it returns into (`doc_vecs = model.encode(documents)`)."""
    direct = _consumer_around(mod, call)
    if direct is not None:
        return decide([direct])
    guess = infer_python(mod, call)
    if guess.signals:
        return guess
    names = [dotted(a) for a in call.args] + [mod.assigned_to(call) or ""]
    for word in names:
        task = _word_task(word.rsplit(".", 1)[-1]) if word else None
        if task:
            return decide([(task, f"it embeds {word!r} (by its name) on {mod.src.where(mod.start(call))}")])
    return guess


def helper_guess(name: str, uses: list[tuple[str, TaskGuess]]) -> TaskGuess:
    """The task of an embedding helper, from every call of it in the repository (`uses`: "path:line" and the
    guess made at that call). One side at every call: that side. Otherwise (two sides, or a call whose side
    is unclear) no single task is right: the helper needs a task parameter, each call passes its side.
    Its own `__main__` demo is one call among the others, never the only say."""
    ordered = sorted(uses, key=lambda u: u[0])
    by_task: dict[str, list[str]] = {}
    unclear: list[str] = []
    for where, guess in ordered:
        if guess.task:
            by_task.setdefault(guess.task, []).append(f"{where}: {guess.reason}")
        else:
            unclear.append(where)

    def listed(wheres: list[str]) -> str:
        return ", ".join(wheres[:3]) + (f" and {len(wheres) - 3} more" if len(wheres) > 3 else "")

    signals = [(t, f"{name}() called on {w}") for t, ws in by_task.items() for w in ws]
    if len(by_task) == 1 and not unclear:
        [(task, wheres)] = by_task.items()
        reason = f"every call of {name}() in the repository embeds for {task} ({listed(wheres)})"
        return TaskGuess(task, reason, signals)
    if not by_task:
        return TaskGuess(
            None,
            f"no call of {name}() in the repository shows which side it embeds ({listed(unclear)}): give it "
            "a task parameter passed on to the model and pass each call's side (retrieval.passage for "
            "documents you store, retrieval.query for queries, text-matching for symmetric similarity)",
            [],
        )
    parts = [f"{t} on {listed(ws)}" for t, ws in sorted(by_task.items())]
    if unclear:
        parts.append(f"a side this analysis cannot tell on {listed(unclear)}")
    return TaskGuess(
        None,
        f"{name}() serves several sides ({'; '.join(parts)}): give it a task parameter passed on to the "
        "model and pass each call's side",
        signals,
    )


# --- other languages (JS/TS, shell, ...) --------------------------------------------------------------

_TEXT_SIGNALS = (
    (
        re.compile(
            r"\bembedQuery\b|\bsimilaritySearch\w*|\basRetriever\b|\bembed_query\b|\bsimilarity_search\b"
        ),
        QUERY,
        "queries searched with",
    ),
    (
        re.compile(
            r"\bembedDocuments\b|\baddDocuments\b|\bfromDocuments\b|\bfromTexts\b|\baddVectors\b|\bupsert\b|"
            r"\bembed_documents\b|\bfrom_documents\b|\badd_texts\b"
        ),
        PASSAGE,
        "documents stored with",
    ),
    (re.compile(r"(?i)\bk-?means\b|\bhdbscan\b|\bcluster"), SEPARATION, "clustering with"),
    (re.compile(r"(?i)\bclassif|\bzero-shot"), CLASSIFICATION, "classification with"),
    (re.compile(r"(?i)\bcosineSimilarity\b|\bcosine_similarity\b|\bdedup"), MATCHING, "similarity with"),
)


def infer_text(text: str) -> TaskGuess:
    """The task for a call site in a non-Python file, from the whole file's signals (the same for every
    finding of the file, so the file is scanned once however many findings it has)."""
    return decide(list(_text_signals(text)))


# Literal words each signal's regex needs (lower case for the case-insensitive ones): a substring test runs
# at memchr speed, the regexes (alternations behind \b) at ~2 MB/s, so a regex runs only from the first
# place one of its words occurs, and not at all when none does.
_SIGNAL_WORDS = (
    ("embedQuery", "similaritySearch", "asRetriever", "embed_query", "similarity_search"),
    ("embedDocuments", "addDocuments", "fromDocuments", "fromTexts", "addVectors", "upsert",
     "embed_documents", "from_documents", "add_texts"),
    ("means", "hdbscan", "cluster"),
    ("classif", "zero-shot"),
    ("cosinesimilarity", "cosine_similarity", "dedup"),
)


@per_text()
def _text_signals(text: str) -> tuple[tuple[str, str], ...]:
    lowered = text.lower()
    same_offsets = len(lowered) == len(text)  # lower() may change the length outside ASCII
    found: list[tuple[int, str, str]] = []
    for (regex, task, what), words in zip(_TEXT_SIGNALS, _SIGNAL_WORDS, strict=True):
        haystack = lowered if regex.flags & re.IGNORECASE else text
        hits = [i for i in (haystack.find(w) for w in words) if i >= 0]
        if not hits:
            continue
        m = regex.search(text, min(hits) if same_offsets else 0)
        if m:
            line = text.count("\n", 0, m.start()) + 1
            found.append((line, task, f"{what} {m.group(0)} on line {line}"))
    return tuple((t, r) for _, t, r in sorted(found))


# --- the recommendation a finding carries ------------------------------------------------------------


def recommendation(
    model: Model, guess: TaskGuess | None, *, local: bool = False, drop_fields: Iterable[str] = ()
) -> dict[str, Any]:
    """Recommended v3 settings for a call site that uses `model` (see docs/rules.md)."""
    v3 = MODELS[V3]
    if model.replacement is None:
        return {"model": model.name, "keep": True, "reason": model.note}
    rec: dict[str, Any] = {
        "from_model": model.name,
        "model": model.replacement,
        "dimensions": {"default": v3.dims, "keep_schema": model.dims}
        if model.dims != v3.dims
        else {"default": v3.dims},
    }
    if guess is not None:
        rec["task"] = guess.task
        rec["task_reason"] = guess.reason
        if guess.both_sides or guess.task is None:
            rec["tasks"] = {"documents": PASSAGE, "queries": QUERY}
    if drop_fields:
        rec["drop_fields"] = sorted(set(drop_fields))
    if model.size_change:
        rec["size_change"] = model.size_change
    if model.bilingual:
        rec["note"] = f"{model.name} is bilingual ({'/'.join(model.languages)}); v3 covers both languages"
    if local:
        rec["licence"] = LICENCE_V3_NOTE
    return rec
