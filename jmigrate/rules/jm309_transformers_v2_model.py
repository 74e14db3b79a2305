"""JM309: transformers `from_pretrained` of a v1/v2 Jina model."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._loaders import loader_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM309",
    name="transformers-v2-model",
    summary="AutoModel.from_pretrained(<v1/v2 Jina model>) loaded locally",
    explanation="v3's remote code exposes model.encode(texts, task=...); mean pooling written by hand "
    "for v2 does not select a task adapter or add the retrieval instruction. v3 weights are "
    "CC BY-NC 4.0 for self-hosting.",
    example='AutoModel.from_pretrained("jinaai/jina-embeddings-v2-small-en", trust_remote_code=True)',
    fix='None automatic beyond the model name (JM101): use model.encode(texts, task="...").',
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from loader_findings(
        ctx,
        "transformers",
        "transformers from_pretrained",
        "Load jinaai/jina-embeddings-v3 (trust_remote_code=True) and call "
        'model.encode(texts, task="{task}"); '
        "v3 weights are CC BY-NC 4.0 for self-hosting",
    )
