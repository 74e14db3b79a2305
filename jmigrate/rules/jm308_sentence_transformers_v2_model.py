"""JM308: sentence-transformers loading a v1/v2 Jina model."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._loaders import loader_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM308",
    name="sentence-transformers-v2-model",
    summary="SentenceTransformer(<v1/v2 Jina model>) loaded locally",
    explanation="v3 loads with trust_remote_code=True, but its encode() needs the task twice: `task=` "
    "selects the LoRA adapter and `prompt_name=` adds the retrieval instruction. Without them "
    "the vectors are generic. v3 weights are CC BY-NC 4.0: commercial self-hosting needs a "
    "licence (the API does not).",
    example='model = SentenceTransformer("jinaai/jina-embeddings-v2-base-en", trust_remote_code=True)',
    fix='None automatic beyond the model name (JM101): call model.encode(texts, task="...", '
    'prompt_name="...") for each side.',
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from loader_findings(
        ctx,
        "sentence-transformers",
        "SentenceTransformer",
        'Load jinaai/jina-embeddings-v3 (trust_remote_code=True) and call encode(texts, task="{task}", '
        'prompt_name="{task}"); v3 weights are CC BY-NC 4.0 for self-hosting',
    )
