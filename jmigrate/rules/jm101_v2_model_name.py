"""JM101: an English Jina Embeddings v2 model name or Hugging Face id."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._model_names import fix_text, model_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM101",
    name="v2-model-name",
    summary="Jina Embeddings v2 model name or Hugging Face id (small-en, base-en)",
    explanation="v2 models are superseded by jina-embeddings-v3 (MTEB English 60.38 -> 65.52, retrieval "
    "47.87 -> 53.87). v2 and v3 vectors are not comparable: switching means re-embedding every "
    "stored document and every query.",
    example='model = "jinaai/jina-embeddings-v2-base-en"',
    fix="Replaces the name with jina-embeddings-v3 (keeping a `jinaai/` or `jina_ai/` prefix). Unsafe: the "
    "vectors change, so the index must be rebuilt; the recommendation gives the task and dimensions. "
    "Ids under other prefixes (Xenova/ mirrors, Ollama tags, local folders) are reported without a fix.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from model_findings(
        ctx,
        lambda m: m.generation == "v2" and m.replacement is not None and not m.bilingual,
        lambda mm: f"{mm.model.name} is a Jina Embeddings v2 model ({mm.model.dims} dims)",
        fix_text,
        True,
    )
