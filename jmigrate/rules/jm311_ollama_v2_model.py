"""JM311: an Ollama tag of a Jina v2 model (`jina/jina-embeddings-v2-...`)."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._integrations import integration_sites
from jmigrate.rules._model_names import guess_for, site
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import infer_python, recommendation
from jmigrate.scan.text import model_matches

# Embedders that serve an Ollama model (LangChain OllamaEmbeddings, LlamaIndex OllamaEmbedding): with no
# v3 on Ollama and no task to send, the class itself changes, so its constructor line is reported too.
OLLAMA_CLASSES = {"OllamaEmbeddings", "OllamaEmbedding"}


@rule(
    code="JM311",
    name="ollama-v2-model",
    summary="Ollama model tag jina/jina-embeddings-v2-* (ollama pull, model=...)",
    explanation="Ollama's library carries the v2 models under the `jina/` namespace. There is no official "
    "jina-embeddings-v3 model in Ollama's library, so the tag cannot just be renamed (llama.cpp can "
    "convert v3 with its task LoRAs into GGUF, but that is a community build to choose and verify).",
    example="ollama pull jina/jina-embeddings-v2-base-en",
    fix="None automatic: use the Jina API or a local ONNX Runtime backend of v3 instead of Ollama.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    for s in integration_sites(ctx, OLLAMA_CLASSES, ollama=True):
        assert mod is not None
        if s.literal_here:
            continue  # the tag on this line is reported below
        may = "may serve" if s.several else "serves"
        yield ctx.finding(
            *mod.span(s.call.func),
            f"{s.cls} {may} the Ollama tag jina/{s.model.name} (a {s.model.generation} model): Ollama has no "
            "v3 and this class sends no task",
            "Replace this embedder: the Jina API (jina-embeddings-v3 with task retrieval.passage for "
            "documents, retrieval.query for queries) or a local ONNX backend of v3",
            Applicability.MANUAL,
            (),
            recommendation(s.model, infer_python(mod, s.call), local=True),
        )
    for match in model_matches(ctx.src.text):
        if match.org != "jina" or match.model.replacement is None:
            continue
        yield ctx.finding(
            match.start,
            match.end + len(match.tail),
            f"Ollama tag jina/{match.model.name} is a {match.model.generation} model",
            "Move to the Jina API (model jina-embeddings-v3 with a task) or a local ONNX backend; "
            "Ollama has no official v3",
            Applicability.MANUAL,
            (),
            # Task advice too (issue 12): how the vectors are used decides the task, whatever serves them.
            recommendation(match.model, guess_for(ctx, site(ctx, match)[0]), local=True),
        )
