"""JM103: a bilingual Jina Embeddings v2 model (German, Spanish or Chinese with English)."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._model_names import fix_text, model_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM103",
    name="v2-bilingual-model-name",
    summary="bilingual Jina Embeddings v2 model (base-de, base-es, base-zh)",
    explanation="The bilingual v2 models pair one language with English. jina-embeddings-v3 is "
    "multilingual (89 languages) and covers both languages of each pair, so one model replaces them.",
    example='JinaEmbeddings(model_name="jina-embeddings-v2-base-de")',
    fix="Replaces the name with jina-embeddings-v3. Unsafe: every vector changes.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from model_findings(
        ctx,
        lambda m: m.generation == "v2" and m.bilingual and m.replacement is not None,
        lambda mm: (
            f"{mm.model.name} is a bilingual v2 model ({'/'.join(mm.model.languages)}); "
            "jina-embeddings-v3 covers both languages"
        ),
        fix_text,
        True,
    )
