"""The one catalogue of Jina embedding models and v3 tasks. Every command reads model facts from here.

Facts come from Jina's API schema (`jinaai-api-schemas`), the model cards and configs and Jina's v3 guide;
docs/rules.md says which rule relies on which.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

V3 = "jina-embeddings-v3"
DEFAULT_DOCUMENT_TASK = "retrieval.passage"  # the v3 task for documents stored in an index
# The loopback stub (jmigrate.testing.server) appends this to the model it says it served, so an index
# built against it says so in its manifest (`served_model`), and `verify` can name it.
STUB_SERVED_SUFFIX = " (jmigrate stub: not real v3 vectors)"

# Matryoshka sizes v3 was trained for; the API accepts any int, these are the supported cut points.
MATRYOSHKA_DIMS: tuple[int, ...] = (32, 64, 128, 256, 512, 768, 1024)

API_MAX_INPUTS = 2048
API_MAX_TOKENS = 8192  # per input; with late chunking, for the whole request

LICENCE_V3_NOTE = (
    "jina-embeddings-v3 weights are CC BY-NC 4.0: self-hosting them for commercial use needs a licence "
    "from Jina AI; the Jina API carries no such restriction."
)
ORDERING_RULE = (
    "Re-embed the documents with v3 before switching queries to v3; never mix v2 and v3 vectors "
    "in one index (they are not comparable, even at dimensions=768)."
)


@dataclass(frozen=True)
class Task:
    name: str
    task_id: int  # position in the config's lora_adaptations
    prefix: str  # instruction prepended to the text ("" when the task has none)
    use: str  # when to choose it, for plan output


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("retrieval.query", 0, "Represent the query for retrieving evidence documents: ",
             "queries in search/RAG (asymmetric retrieval, query side)"),
        Task("retrieval.passage", 1, "Represent the document for retrieval: ",
             "documents stored in an index for search/RAG (passage side)"),
        Task("separation", 2, "", "clustering, re-ranking, visualisation"),
        Task("classification", 3, "", "classifiers and zero-shot labels"),
        Task("text-matching", 4, "", "symmetric similarity, deduplication, STS"),
    )
}


@dataclass(frozen=True)
class Model:
    name: str
    generation: str  # "v1" | "v2" | "v3"
    dims: int
    max_tokens: int
    languages: tuple[str, ...]
    licence: str
    replacement: str | None  # None: keep this model
    hf_id: str
    note: str = ""
    onnx_mirrors: tuple[str, ...] = field(default=())
    params: str = ""  # parameter count from the model card, when it matters for the move to v3

    @property
    def size_change(self) -> str:
        """The cost of moving a small model to v3, said once in every plan that proposes it."""
        if self.replacement != V3 or not self.params:
            return ""
        return (
            f"{self.name} ({self.params} parameters) becomes {V3} (572M): a larger model, expect higher "
            "cost and latency when run locally"
        )

    @property
    def is_legacy(self) -> bool:
        return self.generation in ("v1", "v2")

    @property
    def bilingual(self) -> bool:
        return len(self.languages) == 2


def _v2(suffix: str, dims: int, languages: tuple[str, ...], replacement: str | None, note: str) -> Model:
    name = f"jina-embeddings-v2-{suffix}"
    return Model(name, "v2", dims, 8192, languages, "Apache-2.0", replacement, f"jinaai/{name}", note,
                 (f"Xenova/{name}",))


def _v1(size: str, dims: int) -> Model:
    name = f"jina-embedding-{size}-en-v1"
    return Model(name, "v1", dims, 512, ("en",), "Apache-2.0", V3, f"jinaai/{name}",
                 "legacy v1 model (512-token context)")


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        _v1("t", 312),
        _v1("s", 512),
        _v1("b", 768),
        _v1("l", 1024),
        replace(_v2("small-en", 512, ("en",), V3, "English"), params="33M"),
        replace(_v2("base-en", 768, ("en",), V3, "English"), params="137M"),
        _v2("base-de", 768, ("de", "en"), V3, "German-English bilingual; v3 covers both languages"),
        _v2("base-es", 768, ("es", "en"), V3, "Spanish-English bilingual; v3 covers both languages"),
        _v2("base-zh", 768, ("zh", "en"), V3, "Chinese-English bilingual; v3 covers both languages"),
        _v2("base-code", 768, ("en", "code"), None,
            "code retrieval: stays on v2 (Jina's code-retrieval figures: v2-base-code 0.7753, v3 0.7537)"),
        Model(V3, "v3", 1024, 8192, ("89 languages",), "CC BY-NC 4.0 (weights); API: commercial use allowed",
              None, f"jinaai/{V3}", "XLM-RoBERTa, 572M params, LoRA task adapters, Matryoshka"),
    )
}


def get_model(name: str) -> Model:
    """Look a model up by API name or Hugging Face id (``jinaai/...``, ``Xenova/...``)."""
    key = name.rsplit("/", 1)[-1]
    try:
        return MODELS[key]
    except KeyError:
        from jmigrate.errors import UsageError

        raise UsageError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        from jmigrate.errors import UsageError

        raise UsageError(f"unknown task {name!r}; v3 tasks: {', '.join(TASKS)}") from None


def legacy_models() -> list[Model]:
    return [m for m in MODELS.values() if m.is_legacy]
