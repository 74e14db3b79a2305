"""JM504: a call that embeds texts through a local v2 model, where v3 needs the task at that very call.

The loader line (JM308-JM310) says which model is loaded; the texts are embedded elsewhere, often in
another method (`self.model.encode(...)`) or another module, and each of those calls embeds one side
(documents, queries, texts to cluster...). Each gets its own finding with the task inferred for it. After
`apply` has renamed the model to v3, JM502 reports the same calls while they still pass no task.
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._calls import EmbedCall, embed_calls, wrapper_calls
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import kwarg
from jmigrate.scan.tasks import PASSAGE, QUERY, infer_call, recommendation

BOTH = "retrieval.passage for documents / retrieval.query for queries"


def _fix(kind: str, how: str, task: str | None) -> str:
    side = task or BOTH
    if kind == "fastembed":
        if task == QUERY:
            return "With jinaai/jina-embeddings-v3 (fastembed >= 0.6) embed queries with query_embed()"
        if task == PASSAGE:
            return "With jinaai/jina-embeddings-v3 (fastembed >= 0.6) embed documents with passage_embed()"
        return ("With jinaai/jina-embeddings-v3 (fastembed >= 0.6) use passage_embed() for documents and "
                "query_embed() for queries (embed() applies retrieval.passage to everything)")
    if how == "forward":
        return (f"Load jinaai/jina-embeddings-v3 (trust_remote_code=True) and call model.encode(texts, "
                f"task=...) ({side}) instead of the forward pass and hand-written pooling: the task selects "
                "the adapter and adds the retrieval instruction")
    if kind == "sentence-transformers":
        return f"With jinaai/jina-embeddings-v3 pass task= and prompt_name= here ({side})"
    return f"With jinaai/jina-embeddings-v3 pass task= here ({side})"


@rule(
    code="JM504",
    name="v2-embed-call-without-task",
    summary="a call that embeds texts through a local v2 model: v3 needs the task at this call",
    explanation="A local model embeds whatever each call gives it. v3 selects a task adapter (and, for the "
    "retrieval tasks, an instruction prefix) per call: `encode(texts, task=...)` (with `prompt_name=` in "
    "sentence-transformers), fastembed's `passage_embed()`/`query_embed()`. A forward pass with pooling "
    "written by hand for v2 selects neither. Every such call is found, also through `self.model`, a "
    "variable or a model imported from another module, and gets the task its use suggests.",
    example="vecs = self.model.encode(chunks)  # self.model: SentenceTransformer(<v2 model>)",
    fix="None automatic (v2's encode() takes no task): once on v3, pass the task the finding names at this "
    "call (JM502 keeps reporting the call until it does).",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    if mod is None:
        return
    lines: set[int] = set()  # one finding a line (a helper call wrapping an encode call, say)
    for ec in embed_calls(ctx, mod):
        for f in _finding(ctx, ec):
            lines.add(f.line)
            yield f
    for call, helper in wrapper_calls(ctx, mod):
        loader = helper.inner.loader
        if loader.legacy is None or loader.v3 or kwarg(call, "task") is not None:
            continue
        guess = infer_call(mod, call)
        name = helper.fn.name
        found = ctx.finding(
            *mod.span(call.func),
            f"{name}() embeds its argument through a local {loader.legacy.name} model ({loader.kind}): v3 "
            f"needs the task chosen at this call; {guess.task or 'task unclear'}: {guess.reason}",
            f"Give {name}() a task parameter passed on to the model and pass it here: "
            + _fix(loader.kind, helper.inner.how, guess.task),
            Applicability.MANUAL,
            (),
            recommendation(loader.legacy, guess, local=True),
        )
        if found.line not in lines:
            lines.add(found.line)
            yield found


def _finding(ctx: FileContext, ec: EmbedCall) -> Iterator[Finding]:
    mod = ctx.py
    assert mod is not None
    loader, call = ec.loader, ec.call
    if loader.legacy is None or loader.v3 or kwarg(call, "task") is not None:
        return
    if mod.parents.get(loader.call) is not None and loader.call.lineno == call.lineno:
        return  # SentenceTransformer(<v2>).encode(...) on one line: the loader's finding says it
    guess = infer_call(mod, call)
    what = {"forward": "forward pass (pooled by hand)", "encode": "encode()", "embed": "embed()"}[ec.how]
    here = mod.parents.get(loader.call) is not None
    where = f"on {mod.src.where(mod.start(loader.call))}" if here else "in another module"
    loaded = f"{'may be ' if loader.several else ''}loaded {where}"
    yield ctx.finding(
        *mod.span(call.func),
        f"{what} of a local {loader.legacy.name} model ({loader.kind}, {loaded}): v3 needs the task at this "
        f"call; {guess.task or 'task unclear'}: {guess.reason}",
        _fix(loader.kind, ec.how, guess.task),
        Applicability.MANUAL,
        (),
        recommendation(loader.legacy, guess, local=True),
    )
