"""JM504: a call that embeds texts through a local v2 model, where v3 needs the task at that very call.

The loader line (JM308-JM310) says which model is loaded; the texts are embedded elsewhere, often in
another method (`self.model.encode(...)`) or another module, and each of those calls embeds one side
(documents, queries, texts to cluster...). Each gets its own finding with the task inferred for it. After
`apply` has renamed the model to v3, JM502 reports the same calls while they still pass no task.
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._calls import EmbedCall, embed_calls
from jmigrate.rules._helpers import helper_at, register_calls, register_helper_finding, wrapper_calls
from jmigrate.rules._requests import python_requests
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import kwarg
from jmigrate.scan.tasks import PASSAGE, QUERY, TaskGuess, infer_call, recommendation

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
    "variable or a model imported from another module, and gets the task its use suggests; so is every call "
    "of a helper function that embeds its argument through such a model or a v2 request to /v1/embeddings.",
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
    register_calls(ctx, mod)
    lines: set[int] = set()  # one finding a line (a helper call wrapping an encode call, say)
    for ec in embed_calls(ctx, mod):
        for f in _finding(ctx, ec):
            lines.add(f.line)
            yield f
    requests = {id(r.call) for r in python_requests(ctx)} if "embeddings" in ctx.src.text else set()
    for call, helper in wrapper_calls(ctx, mod):
        if kwarg(call, "task") is not None:
            continue
        if helper.inner is not None:
            loader = helper.inner.loader
            if loader.legacy is None or loader.v3:
                continue
            model, through = loader.legacy, f"a local {loader.legacy.name} model ({loader.kind})"
        else:
            if helper.model is None or helper.model.replacement is None:
                continue  # v3 already: JM502 reports the call
            model = helper.model
            through = f"a request to api.jina.ai/v1/embeddings with {model.name} and no task"
        guess = infer_call(mod, call)
        if helper.inner is not None:
            fix = _fix(helper.inner.loader.kind, helper.inner.how, guess.task)
        else:
            side = guess.task or BOTH
            fix = f'With jina-embeddings-v3 the helper sends it as "task" in the payload ({side})'

        name = helper.fn.name
        start, end = mod.span(call.func)
        found = ctx.finding(
            start,
            end,
            f"{name}() embeds its argument through {through}: v3 needs the task chosen at this call; "
            f"{guess.task or 'task unclear'}: {guess.reason}",
            f"Give {name}() a task parameter passed on to the model and pass it here: {fix}",
            Applicability.MANUAL,
            (),
            recommendation(model, guess, local=helper.inner is not None),
        )
        # One finding a line: not beside another of this rule, nor on the request JM201 reports.
        if found.line not in lines and id(call) not in requests:
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
    legacy = loader.legacy
    guess = infer_call(mod, call)
    what = {"forward": "forward pass (pooled by hand)", "encode": "encode()", "embed": "embed()"}[ec.how]
    here = mod.parents.get(loader.call) is not None
    where = f"on {mod.src.where(mod.start(loader.call))}" if here else "in another module"
    loaded = f"{'may be ' if loader.several else ''}loaded {where}"

    def message(g: TaskGuess) -> str:
        return (f"{what} of a local {legacy.name} model ({loader.kind}, {loaded}): v3 needs the task at this "
                f"call; {g.task or 'task unclear'}: {g.reason}")

    found = ctx.finding(
        *mod.span(call.func),
        message(guess),
        _fix(loader.kind, ec.how, guess.task),
        Applicability.MANUAL,
        (),
        recommendation(legacy, guess, local=True),
    )
    helper = helper_at(ctx, mod, call)
    if helper is not None and helper.inner is ec:
        # The calls of the helper, in every module, say which sides it serves (plan.py, after the walk).
        def rebuild(g: TaskGuess) -> None:
            found.message = message(g)
            found.fix_title = _fix(loader.kind, ec.how, g.task)
            if g.task is None:
                found.fix_title = f"Give {helper.fn.name}() a task parameter: " + found.fix_title
            found.recommendation = recommendation(legacy, g, local=True)

        register_helper_finding(ctx, helper, rebuild)
    yield found
