"""JM310: fastembed TextEmbedding of a v2 Jina model (fastembed has no v3)."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._loaders import loader_findings
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM310",
    name="fastembed-v2-model",
    summary="fastembed TextEmbedding(<v2 Jina model>): fastembed cannot run v3",
    explanation="fastembed ships ONNX exports of the v2 models but not v3 (its LoRA task adapters need a "
    "task id input), so the model name cannot simply be swapped.",
    example='TextEmbedding("jinaai/jina-embeddings-v2-small-en")',
    fix="None automatic: move to the Jina API or a local ONNX Runtime backend of v3 (jmigrate's encoders).",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    yield from loader_findings(
        ctx,
        "fastembed",
        "fastembed TextEmbedding",
        "Replace fastembed with the Jina API or an ONNX Runtime backend of jinaai/jina-embeddings-v3 "
        "(task {task}); v3 weights are CC BY-NC 4.0 for self-hosting",
    )
