"""JM202: the v2-era `normalized` field in an embeddings request payload."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._requests import field_finding, payload_fields
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding

MESSAGE = '"normalized" in an embeddings request (a v2 payload field)'


@rule(
    code="JM202",
    name="normalized-field",
    summary='"normalized" field in an embeddings request payload',
    explanation="v2 clients sent `normalized: true` explicitly. The API normalises by default, so the field "
    "is noise in a v3 payload; `normalized: false` changes scores and needs a decision.",
    example='json={"model": MODEL, "input": texts, "normalized": True}',
    fix='Removes `"normalized": true` (safe: it is the default). `normalized: false` is reported for a '
    "person to decide (manual).",
    applicability=Applicability.SAFE,
    languages=["python", "js", "shell", "markdown", "dockerfile", "text"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for field in payload_fields(ctx, ["normalized"]):
        if field.value is True:
            yield field_finding(
                ctx,
                field,
                MESSAGE,
                "Remove the normalized field (the API normalises by default)",
                Applicability.SAFE,
                [Edit(*field.delete, "")],
                {"drop_fields": ["normalized"]},
            )
        else:
            yield field_finding(
                ctx,
                field,
                MESSAGE,
                "Decide whether unnormalised vectors are really wanted; then remove the field",
                Applicability.MANUAL,
            )
