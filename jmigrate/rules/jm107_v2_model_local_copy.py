"""JM107: a loader reading a local folder whose name abbreviates a v2 model (`../models/jina-v2-zh`)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.rules._calls import MODEL_KWARGS, flow, local_copy
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import call_name, kwarg, last_part
from jmigrate.scan.tasks import infer_python, recommendation
from jmigrate.scan.text import model_matches

_LOADERS = {"from_pretrained", "SentenceTransformer", "TextEmbedding"}


@rule(
    code="JM107",
    name="v2-model-local-copy",
    summary="Loader reading a local folder named like a v2 model (jina-v2-zh, jina_embeddings_v2_de)",
    explanation="A downloaded copy of a v2 model is often kept in a folder named after it, abbreviated: no "
    "search for the Hugging Face id finds it, yet it selects v2 (and the calls embedding through it need "
    "v3's task once it is replaced). The name is the only evidence, so the finding asks to confirm.",
    example="model = AutoModel.from_pretrained('../models/jina-v2-zh', trust_remote_code=True)",
    fix="None automatic: if the folder holds a v2 model, load jinaai/jina-embeddings-v3 (or a local copy of "
    "it) instead and re-embed everything; if not, ignore this finding.",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    if mod is None or "v2" not in ctx.src.text.lower():
        return
    f = flow(ctx, mod)
    seen: set[int] = set()
    for call in mod.calls:
        if last_part(call_name(call)) not in _LOADERS:
            continue
        kw = kwarg(call, *MODEL_KWARGS)
        node = kw.value if kw is not None else (call.args[0] if call.args else None)
        if node is None:
            continue
        f.values(node)
        for lit in f.origin(node):
            if not isinstance(lit, ast.Constant) or not isinstance(lit.value, str) or id(lit) in seen:
                continue
            if any(True for _ in model_matches(lit.value)):
                continue  # a full id: JM101-JM104's
            model = local_copy(lit.value)
            if model is None:
                continue
            seen.add(id(lit))
            yield ctx.finding(
                *mod.span(lit),
                f"{lit.value!r} is probably a local copy of {model.name} (by its folder name): confirm",
                "If it is, load jinaai/jina-embeddings-v3 instead and re-embed everything (v3 is 1024 wide "
                f"by default; dimensions={model.dims} keeps the schema)"
                + (f"; {model.size_change}" if model.size_change else ""),
                Applicability.MANUAL,
                (),
                recommendation(model, infer_python(mod, call), local=True),
            )
