"""JM301: LangChain's JinaEmbeddings (Python and JS) on a v2 model.

Python (langchain_community/embeddings/jina.py) sends only model and input: it cannot pass a task.
LangChain.js (@langchain/community >= 0.3, libs/langchain-community/src/embeddings/jina.ts) sends
`task` itself (retrieval.passage from embedDocuments, retrieval.query from embedQuery) with `dimensions`
(default 1024) and `normalized`: there v3 needs only `model: "jina-embeddings-v3"`. The old JS class took
`modelName` and sent model and input only: code that still passes `modelName` needs the upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._sites import js_embedders, python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import infer_python, infer_text, recommendation

FIX = (
    "Use model jina-embeddings-v3, and for search/RAG embed documents with task retrieval.passage and "
    "queries with retrieval.query (LangChain's Python JinaEmbeddings cannot pass a task: call the API "
    "directly or use an integration that can)"
)
JS_FIX = (
    'Set model: "jina-embeddings-v3" (current @langchain/community JinaEmbeddings sends task '
    "retrieval.passage from embedDocuments and retrieval.query from embedQuery, and dimensions 1024 by "
    "default) and re-embed the documents"
)
JS_OLD_FIX = (
    "Upgrade @langchain/community (this code passes modelName: the old JinaEmbeddings sends no task) and "
    'set model: "jina-embeddings-v3"; the current class sends retrieval.passage/retrieval.query itself'
)


@rule(
    code="JM301",
    name="langchain-jina-embeddings",
    summary="LangChain JinaEmbeddings (Python or JS) using a v2 model (or the v2 default)",
    explanation="LangChain's Python JinaEmbeddings sends only model and input: it cannot pass task or "
    "dimensions, and defaults to jina-embeddings-v2-base-en when no model_name is given; with v3 it would "
    "produce task-less vectors. LangChain.js's current JinaEmbeddings sends the retrieval task per side "
    "and dimensions itself, so there only the model name changes (old versions taking `modelName` do not).",
    example='emb = JinaEmbeddings(model_name="jina-embeddings-v2-base-en")',
    fix="None automatic (the model string itself is JM101's fix). Python: decide how to send the task "
    "(documents: retrieval.passage, queries: retrieval.query) through the API or another integration. "
    "JS: current @langchain/community does it; older versions (modelName) need the upgrade.",
    applicability=Applicability.MANUAL,
    languages=["python", "js"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    sites, found = python_sites(ctx, "langchain")
    for site in found:
        assert sites is not None and site.model is not None
        guess = infer_python(sites.mod, site.call)
        default = " (its default model)" if site.is_default_model else ""
        start, end = site_span(sites, site)
        yield ctx.finding(
            start,
            end,
            f"LangChain JinaEmbeddings on {site.model.name}{default} cannot send a v3 task",
            FIX,
            Applicability.MANUAL,
            (),
            recommendation(site.model, guess),
        )
    for js in js_embedders(ctx):
        old = js.old_api
        yield ctx.finding(
            js.start,
            js.start + len("new JinaEmbeddings"),
            f"LangChain.js JinaEmbeddings on {js.model.name}"
            + (" (old modelName API: sends no task)" if old else " (sends the retrieval tasks itself on v3)"),
            JS_OLD_FIX if old else JS_FIX,
            Applicability.MANUAL,
            (),
            recommendation(js.model, infer_text(ctx.src.text)),
        )
