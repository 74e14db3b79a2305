"""JM203: `encoding_format` (OpenAI's name) or `encoding_type` in a Jina embeddings request."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._requests import other_requests, python_requests
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding
from jmigrate.scan.python import dict_key

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
    mod = ctx.py
    for req in python_requests(ctx):
        assert mod is not None
        d = req.payload
        for field in FIELDS:
            i = dict_key(d, field) if d is not None else None
            if d is None or i is None:
                continue
            key = d.keys[i]
            assert key is not None
            start, end = mod.span(key)
            quote = mod.src.text[start]
            yield _finding(ctx, field, start, end, [Edit(start, end, f"{quote}embedding_type{quote}")])
    text = ctx.src.text
    for treq in other_requests(ctx):
        keys = treq.keys(text)
        for field in FIELDS:
            if field in keys:
                start = keys[field][0]
                name_at = text.index(field, start)
                yield _finding(
                    ctx,
                    field,
                    start,
                    name_at + len(field),
                    [Edit(name_at, name_at + len(field), "embedding_type")],
                )


def _finding(ctx: FileContext, field: str, start: int, end: int, edits: list[Edit]) -> Finding:
    return ctx.finding(
        "JM203",
        start,
        end,
        f'"{field}" is not a Jina API field (400 on v3)',
        "Rename it to embedding_type",
        Applicability.SAFE,
        edits,
        {"drop_fields": [field]},
    )
