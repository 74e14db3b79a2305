"""JM203: `encoding_format` (OpenAI's name) or `encoding_type` in a Jina embeddings request."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._requests import field_finding, payload_fields
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding

FIELDS = ("encoding_format", "encoding_type")


@rule(
    code="JM203",
    name="encoding-format-field",
    summary="encoding_format / encoding_type in a Jina embeddings request (the field is embedding_type)",
    explanation="Jina's API rejects unknown fields with 400. The field is `embedding_type` (float, base64, "
    "binary, ubinary); `encoding_format` is OpenAI's name and `encoding_type` an old one.",
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
            {"drop_fields": [field.key]},
            key_only=True,
        )
