"""JM501: one v2 embedder instance embeds both the stored documents and the queries."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules._sites import python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import PASSAGE, QUERY, TaskGuess, recommendation
from jmigrate.scan.text import balanced_end, model_matches

FIX = (
    "Use two embedders: task retrieval.passage for the documents you store and retrieval.query for the "
    "queries (re-embed the documents first)"
)
_JS_NEW = re.compile(r"(?:const|let|var)\s+(\w+)\s*=\s*new\s+JinaEmbeddings\s*\(\s*(\{)?")


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
    if ctx.language != "js":
        return
    text = ctx.src.text
    for m in _JS_NEW.finditer(text):
        end = balanced_end(text, m.start(2)) if m.group(2) else -1
        models = list(model_matches(text[m.start() : end])) if end > 0 else []
        if not models:
            continue
        var = re.escape(m.group(1))
        query = re.search(rf"\b{var}\.embedQuery\b|\bsimilaritySearch\w*\(", text)
        docs = re.search(
            rf"\b{var}\.embedDocuments\b|fromDocuments\([^)]*\b{var}\b|fromTexts\([^)]*\b{var}\b", text
        )
        if query and docs:
            guess = TaskGuess(
                None,
                f"{docs.group(0)} and {query.group(0)} use the same {m.group(1)}",
                [(PASSAGE, docs.group(0)), (QUERY, query.group(0))],
            )
            yield ctx.finding(
                "JM501",
                m.start(1),
                m.end(1),
                f"one {models[0].model.name} embedder ({m.group(1)}) serves documents and queries",
                FIX,
                Applicability.MANUAL,
                (),
                recommendation(models[0].model, guess),
            )
