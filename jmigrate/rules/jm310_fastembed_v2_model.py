"""JM310: fastembed TextEmbedding of a v2 Jina model.

fastembed >= 0.6 ships `jinaai/jina-embeddings-v3` (fastembed/text/multitask_embedding.py, JinaEmbeddingV3):
`passage_embed()` sends task retrieval.passage, `query_embed()` retrieval.query, and `embed()` uses the
instance's default task (retrieval.passage unless `task_id=` is given). The fix is a model name (JM101
rewrites it) and the right method per side, not a new stack.
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._loaders import loader_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM310",
    name="fastembed-v2-model",
    summary="fastembed TextEmbedding(<v2 Jina model>): v3 is a model name away (fastembed >= 0.6)",
    explanation="fastembed >= 0.6 runs jinaai/jina-embeddings-v3 with its task adapters: passage_embed() "
    "embeds documents (retrieval.passage), query_embed() queries (retrieval.query), and embed() uses the "
    "default task (retrieval.passage). Older fastembed has no v3, and v2 and v3 vectors never mix.",
    example='TextEmbedding("jinaai/jina-embeddings-v2-small-en")',
    fix="The model string is JM101's fix (unsafe); this finding says to require fastembed >= 0.6, embed "
    "queries with query_embed() and re-embed the documents.",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from loader_findings(
        ctx,
        "fastembed",
        "fastembed TextEmbedding",
        'Use TextEmbedding("jinaai/jina-embeddings-v3") (fastembed >= 0.6): passage_embed() for the '
        "documents, query_embed() for the queries (task {task}); re-embed the documents; v3 weights are "
        "CC BY-NC 4.0 for self-hosting",
    )
