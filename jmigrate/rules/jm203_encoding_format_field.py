"""JM203: `encoding_format` (OpenAI's name) in a Jina embeddings request.

`encoding_type` is not flagged: Jina's API schema (jinaai-api-schemas, `TextEmbeddingInput`) declares it as an
alias of `embedding_type`, and LlamaIndex's JinaEmbedding sends it; only `encoding_format` is rejected.
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._requests import field_finding, payload_fields
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding

FIELDS = ("encoding_format",)


@rule(
    code="JM203",
    name="encoding-format-field",
    summary="encoding_format (OpenAI's name) in a Jina embeddings request (the field is embedding_type)",
    explanation="Jina's API rejects unknown fields with 400. The field is `embedding_type` (float, base64, "
    "binary, ubinary); `encoding_format` is OpenAI's name and is rejected. `encoding_type` is an accepted "
    "alias of `embedding_type` and is not reported.",
    example='{"model": MODEL, "input": texts, "encoding_format": "float"}',
    fix="Renames the key to embedding_type (safe: same values, and the old name is an error on v3).",
    applicability=Applicability.SAFE,
    languages=["python", "js", "shell", "markdown", "dockerfile", "text"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for field in payload_fields(ctx, FIELDS):
        at = field.name_start
        yield field_finding(
            ctx,
            field,
            f'"{field.key}" is not a Jina API field (400 on v3)',
            "Rename it to embedding_type",
            Applicability.SAFE,
            [Edit(at, at + len(field.key), "embedding_type")] if at >= 0 else [],
            {"rename_fields": {field.key: "embedding_type"}},
            key_only=True,
        )
