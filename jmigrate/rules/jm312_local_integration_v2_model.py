"""JM312: a LangChain / LlamaIndex / Haystack integration that runs a v1/v2 Jina model locally.

LangChain's HuggingFaceEmbeddings (and SentenceTransformerEmbeddings, HuggingFaceBgeEmbeddings) wrap
sentence-transformers: v3 loads with model_kwargs={"trust_remote_code": True} and takes its task per side
through encode_kwargs (documents) and query_encode_kwargs (queries), each with task= and prompt_name=
(langchain_huggingface/embeddings/huggingface.py passes them to SentenceTransformer.encode). LlamaIndex's
HuggingFaceEmbedding has no way to pass v3's task to encode(). Haystack's SentenceTransformers embedders
take trust_remote_code and encode_kwargs. fastembed integrations (LangChain FastEmbedEmbeddings) are not
reported here: on fastembed >= 0.6 they embed queries with query_embed() and documents with embed(), whose
default task on v3 is retrieval.passage, so only the model name changes (JM101).
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._integrations import integration_sites
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import infer_python, recommendation

_LANGCHAIN_ST = (
    'Load jinaai/jina-embeddings-v3 with model_kwargs={{"trust_remote_code": True}}, '
    'encode_kwargs={{"task": "retrieval.passage", "prompt_name": "retrieval.passage"}} for documents and '
    'query_encode_kwargs={{"task": "retrieval.query", "prompt_name": "retrieval.query"}} for queries '
    "(langchain-huggingface){side}; re-embed the documents; v3 weights are CC BY-NC 4.0 for self-hosting"
)
_HAYSTACK_ST = (
    'Load jinaai/jina-embeddings-v3 with trust_remote_code=True and encode_kwargs={{"task": "{task}", '
    '"prompt_name": "{task}"}}; re-embed the documents; v3 weights are CC BY-NC 4.0 for self-hosting'
)
_LLAMAINDEX_HF = (
    "LlamaIndex's HuggingFaceEmbedding passes no task to v3's encode(): use JinaEmbedding(model="
    '"jina-embeddings-v3", task=...) (task retrieval.passage for the index, retrieval.query for queries: '
    "two instances) or an embedding class that calls encode(texts, task=...){side}"
)
CLASSES = {
    "HuggingFaceEmbeddings": ("LangChain HuggingFaceEmbeddings", _LANGCHAIN_ST),
    "HuggingFaceBgeEmbeddings": ("LangChain HuggingFaceBgeEmbeddings", _LANGCHAIN_ST),
    "SentenceTransformerEmbeddings": ("LangChain SentenceTransformerEmbeddings", _LANGCHAIN_ST),
    "HuggingFaceEmbedding": ("LlamaIndex HuggingFaceEmbedding", _LLAMAINDEX_HF),
    "SentenceTransformersTextEmbedder": ("Haystack SentenceTransformersTextEmbedder", _HAYSTACK_ST),
    "SentenceTransformersDocumentEmbedder": ("Haystack SentenceTransformersDocumentEmbedder", _HAYSTACK_ST),
}


@rule(
    code="JM312",
    name="local-integration-v2-model",
    summary="LangChain / LlamaIndex / Haystack integration running a v1/v2 Jina model locally "
    "(HuggingFaceEmbeddings, HuggingFaceEmbedding, SentenceTransformers*Embedder)",
    explanation="These integrations load the model with sentence-transformers and embed "
    "documents and queries alike. v3 needs trust_remote_code and a task per side (retrieval.passage for "
    "documents, retrieval.query for queries), which is set on the constructor: LangChain's "
    "HuggingFaceEmbeddings through model_kwargs, encode_kwargs and query_encode_kwargs, Haystack's "
    "embedders through trust_remote_code and encode_kwargs; LlamaIndex's HuggingFaceEmbedding cannot pass "
    "the task. The finding sits on the constructor's line, wherever the model id is written.",
    example='emb = HuggingFaceEmbeddings(model_name="jinaai/jina-embeddings-v2-base-en")',
    fix="None automatic beyond the model name (JM101): give the constructor trust_remote_code and the "
    "task per side, or move to an integration that sends it.",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    for s in integration_sites(ctx, set(CLASSES), ollama=False):
        assert mod is not None
        label, fix = CLASSES[s.cls]
        guess = infer_python(mod, s.call)
        task = guess.task or "retrieval.passage"
        side = f" (this instance: {guess.task})" if guess.task else ""
        may = " may use" if s.several else " uses"
        yield ctx.finding(
            *mod.span(s.call.func),
            f"{label}{may} {s.model.name}: v3 needs trust_remote_code and a task per side here",
            fix.format(task=task, side=side),
            Applicability.MANUAL,
            (),
            recommendation(s.model, guess, local=True),
        )
