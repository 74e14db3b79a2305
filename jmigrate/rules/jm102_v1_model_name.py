"""JM102: a legacy Jina Embeddings v1 model name (`jina-embedding-[tslb]-en-v1`)."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._model_names import fix_text, model_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM102",
    name="v1-model-name",
    summary="legacy Jina Embeddings v1 model name (jina-embedding-t/s/b/l-en-v1)",
    explanation="The v1 models (singular 'embedding') have a 512-token context and are two generations "
    "behind; v3 reads 8192 tokens in 89 languages.",
    example='SentenceTransformer("jinaai/jina-embedding-s-en-v1")',
    fix="Replaces the name with jina-embeddings-v3. Unsafe: every vector changes.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from model_findings(
        ctx,
        lambda m: m.generation == "v1",
        lambda mm: f"{mm.model.name} is a legacy v1 model ({mm.model.dims} dims, 512-token context)",
        fix_text,
        True,
    )
