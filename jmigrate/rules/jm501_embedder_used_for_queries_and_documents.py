"""JM501: one v2 embedder instance embeds both the stored documents and the queries."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules._sites import js_embedders, python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import PASSAGE, QUERY, TaskGuess, recommendation

FIX = (
    "Use two embedders: task retrieval.passage for the documents you store and retrieval.query for the "
    "queries (re-embed the documents first)"
)


@rule(
    code="JM501",
    name="embedder-used-for-queries-and-documents",
    summary="the same v2 embedder instance embeds documents and queries",
    explanation="v2 had one embedding for everything. v3 retrieval is asymmetric: documents are embedded "
    "with retrieval.passage and queries with retrieval.query (different adapters and "
    "instructions). One instance configured with one task cannot serve both sides.",
    example="emb = JinaEmbeddings(...); Chroma.from_documents(docs, emb); db.similarity_search(q)",
    fix="None automatic: create a second instance (or pass the task per call where the API allows it).",
    applicability=Applicability.MANUAL,
    languages=["python", "js"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    from jmigrate.scan.tasks import infer_python

    sites, found = python_sites(
        ctx,
        "langchain",
        "llamaindex",
        "chroma",
        "milvus",
        "sentence-transformers",
        "transformers",
        "fastembed",
    )
    for site in found:
        assert sites is not None and site.model is not None
        if site.model.replacement is None:
            continue
        guess = infer_python(sites.mod, site.call)
        if guess.both_sides:
            start, end = site_span(sites, site)
            yield ctx.finding(
                "JM501",
                start,
                end,
                f"one {site.model.name} embedder serves documents and queries: {guess.reason}",
                FIX,
                Applicability.MANUAL,
                (),
                recommendation(site.model, guess),
            )
    text = ctx.src.text
    for js in js_embedders(ctx):
        if js.var is None:
            continue
        # Uses of the variable inside the block that declares it (another function's `embeddings` is
        # another object).
        lo, hi = js.scope
        var = re.escape(js.var)
        query = re.compile(rf"\b{var}\.embedQuery\b|\bsimilaritySearch\w*\(").search(text, lo, hi)
        docs = re.compile(
            rf"\b{var}\.embedDocuments\b|fromDocuments\([^)]*\b{var}\b|fromTexts\([^)]*\b{var}\b"
        ).search(text, lo, hi)
        if query and docs:
            guess = TaskGuess(
                None,
                f"{docs.group(0)} and {query.group(0)} use the same {js.var}",
                [(PASSAGE, docs.group(0)), (QUERY, query.group(0))],
            )
            yield ctx.finding(
                "JM501",
                js.var_start,
                js.var_start + len(js.var),
                f"one {js.model.name} embedder ({js.var}) serves documents and queries",
                FIX,
                Applicability.MANUAL,
                (),
                recommendation(js.model, guess),
            )
