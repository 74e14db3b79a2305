"""JM301: LangChain's JinaEmbeddings (Python and JS) on a v2 model."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._sites import js_embedders, python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import infer_python, infer_text, recommendation

FIX = (
    "Use model jina-embeddings-v3, and for search/RAG embed documents with task retrieval.passage and "
    "queries with retrieval.query (LangChain's JinaEmbeddings cannot pass a task: call the API directly "
    "or use an integration that can)"
)


@rule(
    code="JM301",
    name="langchain-jina-embeddings",
    summary="LangChain JinaEmbeddings (Python or JS) using a v2 model (or the v2 default)",
    explanation="LangChain's JinaEmbeddings sends only model and input: it cannot pass task or dimensions. "
    "The Python class defaults to jina-embeddings-v2-base-en when no model_name is given. With v3 "
    "it would produce task-less vectors, and one instance embeds both queries and documents.",
    example='emb = JinaEmbeddings(model_name="jina-embeddings-v2-base-en")',
    fix="None automatic (the model string itself is JM101's fix). Decide how to send task: two embedders "
    "(documents: retrieval.passage, queries: retrieval.query) through the API or another integration.",
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
        yield ctx.finding(
            js.start,
            js.start + len("new JinaEmbeddings"),
            f"LangChain.js JinaEmbeddings on {js.model.name} cannot send a v3 task",
            FIX,
            Applicability.MANUAL,
            (),
            recommendation(js.model, infer_text(ctx.src.text)),
        )
