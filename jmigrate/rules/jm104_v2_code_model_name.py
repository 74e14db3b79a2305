"""JM104: jina-embeddings-v2-base-code, which stays on v2 (reported so the decision is visible)."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._model_names import model_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM104",
    name="v2-code-model-name",
    summary="jina-embeddings-v2-base-code: keep it (v3 is weaker on code retrieval)",
    explanation="On Jina's code-retrieval figures v2-base-code scores 0.7753 against 0.7537 for v3 (a "
    "0.7564 figure is for an unpublished v3 configuration users cannot select), so jmigrate recommends "
    "keeping it for code corpora. It is reported "
    "so the plan shows every v2 dependency and why it stays.",
    example='model = "jinaai/jina-embeddings-v2-base-code"',
    fix="None: keep the model (and its 768-dimension index). Informational, manual.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from model_findings(
        ctx,
        lambda m: m.generation == "v2" and m.replacement is None,
        lambda mm: f"{mm.model.name} is the v2 code model; it stays on v2",
        lambda mm, g: "Keep it for code corpora: v3 scores lower on code retrieval (0.7537 vs 0.7753)",
        False,
    )
