"""JM302: LlamaIndex's JinaEmbedding on a v2 model."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._sites import add_keyword, python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import kwarg
from jmigrate.scan.tasks import infer_python, recommendation


@rule(
    code="JM302",
    name="llamaindex-jina-embedding",
    summary="LlamaIndex JinaEmbedding(model=<v2>) without a task",
    explanation="LlamaIndex's JinaEmbedding takes one `task` for both queries and documents, so an index "
    "that embeds documents and answers queries needs two instances (retrieval.passage for the "
    "index, retrieval.query for the query engine).",
    example='embed_model = JinaEmbedding(model="jina-embeddings-v2-base-en", api_key=key)',
    fix='Adds task="<inferred>" when the instance serves one side only (unsafe, together with JM101\'s model '
    "change); when it serves both sides the finding is manual: create two instances.",
    applicability=Applicability.UNSAFE,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    sites, found = python_sites(ctx, "llamaindex")
    for site in found:
        assert sites is not None and site.model is not None
        if kwarg(site.call, "task") is not None:
            continue
        guess = infer_python(sites.mod, site.call)
        start, end = site_span(sites, site)
        edits = [add_keyword(sites.mod, site.call, "task", guess.task)] if guess.task else []
        fix = (
            f'Pass task="{guess.task}" ({guess.reason})'
            if guess.task
            else 'Create two JinaEmbedding instances: task="retrieval.passage" for the index and '
            f'task="retrieval.query" for queries ({guess.reason})'
        )
        yield ctx.finding(
            start,
            end,
            f"LlamaIndex JinaEmbedding on {site.model.name} has no task (one task serves both "
            "queries and documents)",
            fix,
            Applicability.UNSAFE,
            edits,
            recommendation(site.model, guess),
        )
