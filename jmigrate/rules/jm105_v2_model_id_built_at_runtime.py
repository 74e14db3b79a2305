"""JM105: a v2 model id assembled at run time from a visible v2 prefix."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.text import PARTIAL_V2, model_matches


@rule(
    code="JM105",
    name="v2-model-id-built-at-runtime",
    summary='v2 model id built at run time ("jina-embeddings-v2-" + size, f"...-v2-{size}-en")',
    explanation="Ids assembled from parts (format strings, f-strings, template literals, concatenation) "
    "select a v2 model that no plain search for the full name finds. The parts that vary "
    "(size, language) have no v3 counterpart: v3 is one multilingual model.",
    example='model = f"jinaai/jina-embeddings-v2-{size}-en"',
    fix='None automatic: replace the whole expression with "jina-embeddings-v3" (and drop the size/language '
    "switch), or keep it if it selects base-code.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    text = ctx.src.text
    for m in PARTIAL_V2.finditer(text):
        end = m.end()
        while end < len(text) and (text[end].isalnum() or text[end] in "-_{}$+.\"' "):
            if text[end] in "\"'" or text[end] == " ":
                break
            end += 1
        yield ctx.finding(
            m.start(),
            end,
            f"v2 model id built at run time from {text[m.start() : end]!r}",
            'Replace the whole expression with "jina-embeddings-v3" (one multilingual model; pass task= '
            "instead of choosing a size/language), unless it selects jina-embeddings-v2-base-code",
            Applicability.MANUAL,
        )
    mod = ctx.py
    if mod is None:
        return
    # "jina-embeddings-" "v2-base-en": adjacent literals that Python joins into a v2 id.
    for node in mod.of_type(ast.Constant):
        if isinstance(node.value, str) and "jina-embedding" in node.value:
            start, end = mod.span(node)
            for match in model_matches(node.value):
                if match.model.name not in text[start:end]:
                    yield ctx.finding(
                        start,
                        end,
                        f"{match.model.name} assembled from adjacent string literals",
                        f'Write the id in one piece: "{match.model.replacement or match.model.name}"',
                        Applicability.MANUAL,
                    )
