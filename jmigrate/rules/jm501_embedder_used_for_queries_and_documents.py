"""JM501: one v2 embedder instance embeds both the stored documents and the queries.

Not reported where the API already picks the task per side (each pinned by a test in
tests/test_rules_frameworks.py): Milvus `JinaEmbeddingFunction` (encode_documents / encode_queries), fastembed
>= 0.6 (passage_embed / query_embed), Chroma's `JinaEmbeddingFunction` (task= for documents and
query_config={"task": ...} for embed_query; JM304 says so) and current LangChain.js `JinaEmbeddings`
(embedDocuments / embedQuery). Only the old LangChain.js API (`modelName`) is reported there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules._sites import js_embedders, python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.memo import per_text
from jmigrate.scan.tasks import PASSAGE, QUERY, TaskGuess, recommendation

FIX = {
    "llamaindex": "Use two JinaEmbedding instances (one task each): task retrieval.passage for the documents "
    "you store, retrieval.query for the queries (re-embed the documents first)",
    "langchain": "LangChain's Python JinaEmbeddings sends no task: embed documents with retrieval.passage "
    "and queries with retrieval.query through an embedder that sends the task (re-embed the documents first)",
    "sentence-transformers": 'Pass the task per call: encode(docs, task="retrieval.passage", '
    'prompt_name="retrieval.passage") and encode(queries, task="retrieval.query", '
    'prompt_name="retrieval.query")',
    "transformers": 'Pass the task per call: encode(docs, task="retrieval.passage") and encode(queries, '
    'task="retrieval.query")',
    "ollama": "Ollama has no official jina-embeddings-v3 model and sends no task: embed documents with "
    "retrieval.passage and queries with retrieval.query through an embedder that sends the task (the Jina "
    "API, or a local v3 backend), re-embedding the documents first",
    "llamaindex-hf": "LlamaIndex's HuggingFaceEmbedding embeds the index and the queries with one model and "
    "no v3 task (query_instruction/text_instruction add a prefix, not the adapter): use two JinaEmbedding "
    "instances, task retrieval.passage for the index and retrieval.query for the query engine, or an "
    "embedder that passes the task per side",
    "langchain-hf": 'LangChain HuggingFaceEmbeddings (langchain-huggingface) can pass the task per side: '
    'model_kwargs={"trust_remote_code": True}, encode_kwargs={"task": "retrieval.passage", "prompt_name": '
    '"retrieval.passage"}, query_encode_kwargs={"task": "retrieval.query", "prompt_name": "retrieval.query"}',
}
JS_FIX = (
    "Upgrade @langchain/community and use model: \"jina-embeddings-v3\": the current JinaEmbeddings sends "
    "retrieval.passage from embedDocuments and retrieval.query from embedQuery"
)


@rule(
    code="JM501",
    name="embedder-used-for-queries-and-documents",
    summary="the same v2 embedder instance embeds documents and queries",
    explanation="v2 had one embedding for everything. v3 retrieval is asymmetric: documents are embedded "
    "with retrieval.passage and queries with retrieval.query (different adapters and "
    "instructions). One instance configured with one task cannot serve both sides.",
    example="emb = JinaEmbeddings(...); Chroma.from_documents(docs, emb); db.similarity_search(q)",
    fix="None automatic: pass the task per call where the API allows it (sentence-transformers, "
    "transformers), else a second instance (LlamaIndex) or an embedder that sends the task.",
    applicability=Applicability.MANUAL,
    languages=["python", "js"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    from jmigrate.scan.tasks import infer_python

    sites, found = python_sites(ctx, *FIX)
    for site in found:
        assert sites is not None and site.model is not None
        if site.model.replacement is None:
            continue
        guess = infer_python(sites.mod, site.call)
        if guess.both_sides:
            start, end = site_span(sites, site)
            yield ctx.finding(
                start,
                end,
                f"one {site.model.name} embedder serves documents and queries: {guess.reason}",
                FIX[site.kind],
                Applicability.MANUAL,
                (),
                recommendation(site.model, guess),
            )
    text = ctx.src.text
    for js in js_embedders(ctx):
        if js.var is None or not js.old_api:
            continue  # the current class sends the task per side itself
        # Uses of the variable inside the block that declares it (another function's `embeddings` is
        # another object).
        lo, hi = js.scope
        uses = _js_uses(text)
        query = next((u for u in uses if lo <= u[0] < hi and u[1] == "query" and js.var in u[2]), None)
        docs = next((u for u in uses if lo <= u[0] < hi and u[1] == "docs" and js.var in u[2]), None)
        if query and docs:
            guess = TaskGuess(
                None,
                f"{docs[3]} and {query[3]} use the same {js.var}",
                [(PASSAGE, docs[3]), (QUERY, query[3])],
            )
            yield ctx.finding(
                js.var_start,
                js.var_start + len(js.var),
                f"one {js.model.name} embedder ({js.var}) serves documents and queries",
                JS_FIX,
                Applicability.MANUAL,
                (),
                recommendation(js.model, guess),
            )


_USES = re.compile(
    r"(?P<q>(?P<qv>[\w$]+)\.embedQuery\b)|(?P<s>\bsimilaritySearch\w*\()"
    r"|(?P<d>(?P<dv>[\w$]+)\.embedDocuments\b)|(?P<f>\b(?:fromDocuments|fromTexts)\((?P<fa>[^)]*)\))"
)


@per_text()
def _js_uses(text: str) -> tuple[tuple[int, str, frozenset[str], str], ...]:
    """(offset, "query"/"docs", the variables involved, the text) of every use, in one pass per file.
    `similaritySearch(` on any store counts as a query for every variable, as before."""
    out = []
    for m in _USES.finditer(text):
        if m.group("q"):
            out.append((m.start(), "query", frozenset([m.group("qv")]), m.group(0)))
        elif m.group("s"):
            out.append((m.start(), "query", _ANY, m.group(0)))
        elif m.group("d"):
            out.append((m.start(), "docs", frozenset([m.group("dv")]), m.group(0)))
        else:
            out.append((m.start(), "docs", frozenset(re.findall(r"[\w$]+", m.group("fa"))), m.group(0)))
    return tuple(out)


class _Any(frozenset[str]):
    def __contains__(self, item: object) -> bool:
        return True


_ANY = _Any()
