"""JM304: Chroma's or Milvus's JinaEmbeddingFunction on a v2 model.

Chroma (chromadb >= 1.0, chromadb/utils/embedding_functions/jina_embedding_function.py) sends `task` for
documents and, from `embed_query`, overrides it with `query_config`; without them v3 gets no task. Milvus
(milvus-model, milvus_model/dense/jinaai.py) sends retrieval.passage from encode_documents and
retrieval.query from encode_queries.
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._sites import python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import infer_python, recommendation

FIX = {
    "chroma": 'Create a new Chroma collection with JinaEmbeddingFunction(model_name="jina-embeddings-v3", '
    'task="retrieval.passage", query_config={"task": "retrieval.query"}) and re-add every document (a '
    "collection cannot change its embedding model; without task/query_config v3 vectors are task-less)",
    "milvus": 'Use JinaEmbeddingFunction(model_name="jina-embeddings-v3"): encode_documents() for what you '
    "insert, encode_queries() for searches; create a new collection (dim 1024) and re-insert",
}


@rule(
    code="JM304",
    name="jina-embedding-function",
    summary="Chroma / Milvus JinaEmbeddingFunction using a v2 model (or Chroma's v2 default)",
    explanation="Chroma's JinaEmbeddingFunction defaults to jina-embeddings-v2-base-en, and a Chroma "
    "collection keeps the vectors of the model it was filled with: switching the model of an "
    "existing collection silently mixes v2 and v3 vectors. Milvus's pymilvus.model "
    "JinaEmbeddingFunction needs a new collection schema for v3's 1024 dimensions. Chroma's class sends "
    "the task only when given task= (documents) and query_config={'task': ...} (queries).",
    example='ef = JinaEmbeddingFunction(api_key=key, model_name="jina-embeddings-v2-base-en")',
    fix="None automatic: a new collection is created and filled with v3 vectors (manual).",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    sites, found = python_sites(ctx, "chroma", "milvus")
    for site in found:
        assert sites is not None and site.model is not None
        default = " (its default model)" if site.is_default_model else ""
        start, end = site_span(sites, site)
        store = "Chroma" if site.kind == "chroma" else "Milvus"
        yield ctx.finding(
            start,
            end,
            f"{store} JinaEmbeddingFunction on {site.model.name}{default}: the collection holds v2 vectors",
            FIX[site.kind],
            Applicability.MANUAL,
            (),
            recommendation(site.model, infer_python(sites.mod, site.call)),
        )
