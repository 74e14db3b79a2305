"""JM502: unfinished jina-embeddings-v3 code: no task, one task for both sides, no trust_remote_code.

After `apply` rewrites model names, the code loads v3 but may still encode like v2. `plan` must not report
zero findings then: v3 without a task gives generic vectors (no adapter), and asymmetric retrieval needs
retrieval.passage for documents and retrieval.query for queries.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.models import V3
from jmigrate.rules._calls import EmbedCall, embed_calls, flow
from jmigrate.rules._helpers import register_calls, wrapper_calls
from jmigrate.rules._integrations import model_node
from jmigrate.rules._sites import string_value
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import PyModule, call_name, dotted, kwarg, last_part
from jmigrate.scan.tasks import PASSAGE, infer_call, infer_python

# Local loaders whose v3 model runs Jina's custom code (task adapters): trust_remote_code=True is required.
LOADERS = {"SentenceTransformer", "from_pretrained"}
# Integrations constructed with one task for every call (task= on the constructor).
ONE_TASK = {"JinaEmbedding": "LlamaIndex JinaEmbedding", "JinaTextEmbedder": "Haystack JinaTextEmbedder",
            "JinaDocumentEmbedder": "Haystack JinaDocumentEmbedder"}
MODEL_KWARGS = ("model_name", "model", "model_id", "model_name_or_path", "pretrained_model_name_or_path")


def _is_v3(mod: PyModule, call: ast.Call) -> bool:
    kw = kwarg(call, *MODEL_KWARGS)
    node = kw.value if kw is not None else (call.args[0] if call.args else None)
    value = string_value(mod, node)
    return isinstance(value, str) and value.rsplit("/", 1)[-1].split("@", 1)[0] == V3


def _true(mod: PyModule, call: ast.Call, name: str) -> bool:
    kw = kwarg(call, name)
    if kw is not None:
        return mod.constant_value(kw.value) is True
    # model_kwargs={"trust_remote_code": True} (LangChain's HuggingFaceEmbeddings and similar)
    return name in mod.segment(call)


@rule(
    code="JM502",
    name="v3-used-without-task",
    summary="jina-embeddings-v3 loaded or called without a task (or without trust_remote_code=True)",
    explanation="v3 picks a LoRA adapter per task; without one it returns generic vectors that retrieve "
    "worse, and documents and queries need different tasks (retrieval.passage / retrieval.query). Loading "
    "it with sentence-transformers or transformers runs Jina's code, which needs trust_remote_code=True "
    "(its tokenizer is plain XLM-RoBERTa and needs none). A raw forward pass that passes `adapter_mask` "
    "(the task's id per text) has chosen its task. This rule is what keeps `plan` from reporting zero "
    "findings after `apply` renamed the model.",
    example='SentenceTransformer("jinaai/jina-embeddings-v3", trust_remote_code=True).encode(docs)',
    fix="None automatic: pass task= (and prompt_name= with sentence-transformers) on each encode call, "
    "or give the integration its task; add trust_remote_code=True.",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    if mod is None:
        return
    # Calls that embed through a local v3 model (found by JM504's analysis: self.model, variables, imports).
    lines: set[int] = set()
    for ec in embed_calls(ctx, mod):
        if ec.loader.v3 and ec.loader.legacy is None:
            for f in _embeds_without_task(ctx, mod, ec):
                lines.add(f.line)
                yield f
    register_calls(ctx, mod)
    for call, helper in wrapper_calls(ctx, mod):
        if kwarg(call, "task") is not None:
            continue
        if helper.inner is None:
            if helper.model is None or helper.model.name != V3:
                continue
        else:
            loader = helper.inner.loader
            if not loader.v3 or loader.legacy is not None:
                continue
        guess = infer_call(mod, call)
        side = guess.task or "retrieval.passage for documents / retrieval.query for queries"
        found = ctx.finding(
            *mod.span(call.func),
            f"{helper.fn.name}() embeds through {V3} but this call chooses no task",
            f"Give {helper.fn.name}() a task parameter passed on to the model and pass it here ({side})",
            Applicability.MANUAL,
        )
        if found.line not in lines:
            lines.add(found.line)
            yield found
    if V3 not in ctx.src.text:
        return
    for call in mod.calls:
        last = last_part(call_name(call))
        if not _is_v3(mod, call) and not (last in ST_INTEGRATIONS and _only_v3(ctx, mod, call)):
            continue
        start, end = mod.span(call.func)
        if last in LOADERS:
            if not _tokenizer(call) and not _true(mod, call, "trust_remote_code"):
                yield ctx.finding(
                    start,
                    end,
                    f"{V3} loaded without trust_remote_code=True (its task adapters are custom code)",
                    "Add trust_remote_code=True", Applicability.MANUAL,
                )
        elif last in ONE_TASK:
            task = kwarg(call, "task")
            if task is None:
                yield ctx.finding(
                    start, end, f"{ONE_TASK[last]} on {V3} without a task",
                    'Pass task="retrieval.passage" for documents or task="retrieval.query" for queries',
                    Applicability.MANUAL,
                )
            elif last == "JinaEmbedding" and infer_python(mod, call).both_sides:
                yield ctx.finding(
                    start, end, f"one {ONE_TASK[last]} (one task) on {V3} embeds documents and queries",
                    "Use two instances: task retrieval.passage for documents, retrieval.query for queries",
                    Applicability.MANUAL,
                )
        elif last == "JinaEmbeddingFunction" and "pymilvus" not in ctx.src.text:
            if kwarg(call, "task") is None or kwarg(call, "query_config") is None:
                yield ctx.finding(
                    start, end, f"Chroma JinaEmbeddingFunction on {V3} without task and query_config",
                    'Pass task="retrieval.passage", query_config={"task": "retrieval.query"}',
                    Applicability.MANUAL,
                )
        elif last == "JinaEmbeddings" and "langchain" in ctx.src.text:
            yield ctx.finding(
                start, end, f"LangChain (Python) JinaEmbeddings on {V3} sends no task",
                "Embed through an integration or a direct API call that sends task (retrieval.passage for "
                "documents, retrieval.query for queries)",
                Applicability.MANUAL,
            )
        elif last in ("HuggingFaceEmbeddings", "HuggingFaceBgeEmbeddings",
                      "SentenceTransformerEmbeddings"):
            # LangChain (langchain-huggingface): encode_kwargs serve embed_documents, query_encode_kwargs
            # embed_query; each needs v3's task (and prompt_name), and the model trust_remote_code.
            missing = [
                k for k in ("encode_kwargs", "query_encode_kwargs")
                if not _has_task(mod, kwarg(call, k))
            ]
            if missing or not _true(mod, call, "trust_remote_code"):
                yield ctx.finding(
                    start, end, f"LangChain {last} on {V3} without a task per side"
                    if missing else f"LangChain {last} on {V3} without trust_remote_code",
                    'Pass model_kwargs={"trust_remote_code": True}, encode_kwargs={"task": '
                    '"retrieval.passage", "prompt_name": "retrieval.passage"}, query_encode_kwargs={"task": '
                    '"retrieval.query", "prompt_name": "retrieval.query"}',
                    Applicability.MANUAL,
                )
        elif last == "HuggingFaceEmbedding" and "llama_index" in ctx.src.text:
            yield ctx.finding(
                start, end, f"LlamaIndex HuggingFaceEmbedding on {V3} selects no task adapter",
                "Use JinaEmbedding with task=retrieval.passage for the index and a second one with "
                "task=retrieval.query for queries, or an embedder that passes v3's task per side",
                Applicability.MANUAL,
            )
        elif last in ST_INTEGRATIONS:  # Haystack's SentenceTransformers embedders, HuggingFaceEmbedding
            st = _st_integration(ctx, mod, call, last)
            if st is not None:
                yield st


def _has_task(mod: PyModule, kw: ast.keyword | None) -> bool:
    """encode_kwargs={"task": ...} (a dict literal, directly or through a name)."""
    if kw is None:
        return False
    d, _ = mod.resolve_dict(kw.value)
    return d is not None and any(isinstance(k, ast.Constant) and k.value == "task" for k in d.keys)


# Integrations over sentence-transformers (JM312's) and the keywords carrying encode()'s task per side.
ST_INTEGRATIONS = {
    "HuggingFaceEmbeddings": ("encode_kwargs", "query_encode_kwargs"),
    "HuggingFaceBgeEmbeddings": ("encode_kwargs", "query_encode_kwargs"),
    "SentenceTransformerEmbeddings": ("encode_kwargs", "query_encode_kwargs"),
    "SentenceTransformersTextEmbedder": ("encode_kwargs",),
    "SentenceTransformersDocumentEmbedder": ("encode_kwargs",),
    "HuggingFaceEmbedding": (),  # LlamaIndex: no way to pass the task
}


def _only_v3(ctx: FileContext, mod: PyModule, call: ast.Call) -> bool:
    """Every value the model argument may take (JM312's value flow) is v3."""
    values, _ = flow(ctx, mod).values(model_node(call))
    return bool(values) and all(v.rsplit("/", 1)[-1].split("@", 1)[0] == V3 for v in values)


def _st_integration(ctx: FileContext, mod: PyModule, call: ast.Call, cls: str) -> Finding | None:
    """v3 through a sentence-transformers integration: trust_remote_code and the task per side are set on
    the constructor (or cannot be, for LlamaIndex's HuggingFaceEmbedding)."""
    start, end = mod.span(call.func)
    sides = ST_INTEGRATIONS[cls]
    if not sides:
        return ctx.finding(
            start, end, f"LlamaIndex HuggingFaceEmbedding on {V3} passes no task to encode()",
            f'Use JinaEmbedding(model="{V3}", task=...) (two instances: retrieval.passage for the index, '
            "retrieval.query for queries) or an embedding class that calls encode(texts, task=...)",
            Applicability.MANUAL,
        )
    given = {k: kwarg(call, k) for k in sides}
    missing = [k for k, kw in given.items() if kw is None or "task" not in mod.segment(kw.value)]
    trust = _true(mod, call, "trust_remote_code")
    if not missing and trust:
        return None
    what = ", ".join(["trust_remote_code"] * (not trust) + [f"a task in {k}" for k in missing])
    return ctx.finding(
        start, end, f"{cls} on {V3} without {what}",
        'Pass model_kwargs={"trust_remote_code": True} (trust_remote_code=True in Haystack) and '
        + " and ".join(
            f'{k}={{"task": "{t}", "prompt_name": "{t}"}}'
            for k, t in zip(sides, ("retrieval.passage", "retrieval.query"), strict=False)
        ),
        Applicability.MANUAL,
    )


def _tokenizer(call: ast.Call) -> bool:
    """`AutoTokenizer.from_pretrained(...)`: v3's tokenizer is plain XLM-RoBERTa, it runs no remote code (a
    trust_remote_code finding on it was a false alarm on real code, issue 12)."""
    func = call.func
    owner = last_part(dotted(func.value)) if isinstance(func, ast.Attribute) else ""
    return "Tokenizer" in owner


# Keywords of a raw v3 forward that select the task adapter (the remote code's `adapter_mask`, a tensor of
# the task's id per text; the ONNX export's `task_id`).
_ADAPTER_KWARGS = ("adapter_mask", "task_id")


def _embeds_without_task(ctx: FileContext, mod: PyModule, ec: EmbedCall) -> Iterator[Finding]:
    """A call on a v3 model that passes no task (and no prompt_name with sentence-transformers)."""
    call, func = ec.call, ec.call.func
    st = ec.loader.kind == "sentence-transformers"
    if ec.how == "forward":
        if kwarg(call, *_ADAPTER_KWARGS) is not None:
            return  # the task is chosen (the retrieval instruction is the caller's text to add)
        yield ctx.finding(
            *mod.span(func), f"{V3} forward pass pooled by hand: no task adapter, no retrieval instruction",
            "Call model.encode(texts, task=...) instead (retrieval.passage for documents / "
            "retrieval.query for queries)",
            Applicability.MANUAL,
        )
        return
    if ec.loader.kind == "fastembed":
        guess = infer_call(mod, call)
        if guess.task != PASSAGE:  # embed() applies retrieval.passage: right for documents only
            yield ctx.finding(
                *mod.span(func), f"fastembed embed() on {V3} embeds with retrieval.passage",
                "Embed queries with query_embed() (documents with passage_embed())", Applicability.MANUAL,
            )
        return
    if kwarg(call, "task") is not None:
        if st and kwarg(call, "prompt_name") is None:
            yield ctx.finding(
                *mod.span(func), f"{V3} encode() with task but no prompt_name (sentence-transformers)",
                "Pass prompt_name= the same task so the instruction prefix is added",
                Applicability.MANUAL,
            )
        return
    guess = infer_call(mod, call)
    side = guess.task or "retrieval.passage for documents / retrieval.query for queries"
    yield ctx.finding(
        *mod.span(func), f"{V3} encode() without a task: generic vectors, no adapter",
        f"Pass task= ({side})" + (" and prompt_name= the same" if st else ""),
        Applicability.MANUAL,
    )
