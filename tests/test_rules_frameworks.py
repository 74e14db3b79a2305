"""Each rule whose advice depends on what a framework or the API does, pinned to that behaviour.

Every test names the framework version and the source file the advice was checked against (issue 12): when
the framework changes, the test that encodes its old behaviour is the one to revisit in review.
"""

from __future__ import annotations

from pathlib import Path

from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.plan import plan

V2 = "jina-embeddings-v2-base-en"


def findings(tmp_path: Path, name: str, source: str, *codes: str) -> list[Finding]:
    (tmp_path / name).write_text(source, encoding="utf-8")
    return plan(tmp_path / name, select=list(codes)).findings


def test_jm310_fastembed_runs_v3_so_the_fix_is_a_model_name(tmp_path: Path) -> None:
    # fastembed >= 0.6, fastembed/text/multitask_embedding.py: supported_multitask_models lists
    # "jinaai/jina-embeddings-v3"; query_embed() uses task retrieval.query, passage_embed() retrieval.passage.
    src = 'from fastembed import TextEmbedding\nm = TextEmbedding("jinaai/jina-embeddings-v2-small-en")\n'
    [jm310] = findings(tmp_path, "fe.py", src, "JM310")
    assert 'TextEmbedding("jinaai/jina-embeddings-v3")' in jm310.fix_title
    assert "query_embed()" in jm310.fix_title
    assert "Replace fastembed" not in jm310.fix_title
    [jm101] = findings(tmp_path, "fe.py", src, "JM101")
    assert jm101.applicability is Applicability.UNSAFE
    assert [e.replacement for e in jm101.edits] == ["jina-embeddings-v3"]  # jinaai/ org kept


def test_jm301_langchain_js_sends_the_tasks_itself(tmp_path: Path) -> None:
    # @langchain/community >= 0.3, libs/langchain-community/src/embeddings/jina.ts: getParams() sends
    # task "retrieval.query" from embedQuery and "retrieval.passage" from embedDocuments, dimensions (1024)
    # and normalized. The older class (option `modelName`) sent only {input, model}.
    src = (
        f'const e = new JinaEmbeddings({{ model: "{V2}" }});\n'
        "const s = await MemoryVectorStore.fromDocuments(docs, e);\nawait s.similaritySearch(q);\n"
    )
    [jm301] = findings(tmp_path, "a.ts", src, "JM301")
    assert "cannot send" not in jm301.message and 'model: "jina-embeddings-v3"' in jm301.fix_title
    assert findings(tmp_path, "a.ts", src, "JM501") == []  # one instance serves both sides correctly
    old = src.replace("model:", "modelName:")
    [jm301_old] = findings(tmp_path, "b.ts", old, "JM301")
    assert "Upgrade @langchain/community" in jm301_old.fix_title
    assert len(findings(tmp_path, "b.ts", old, "JM501")) == 1


def test_jm301_python_langchain_still_cannot_send_a_task(tmp_path: Path) -> None:
    # langchain-community 0.3, langchain_community/embeddings/jina.py: _embed() posts {"input", "model"}.
    src = "from langchain_community.embeddings import JinaEmbeddings\n"
    src += f'e = JinaEmbeddings(model_name="{V2}")\n'
    [jm301] = findings(tmp_path, "lc.py", src, "JM301")
    assert "cannot send a v3 task" in jm301.message


def test_jm501_is_silent_where_the_api_picks_the_task_per_side(tmp_path: Path) -> None:
    # milvus-model 0.3, milvus_model/dense/jinaai.py: encode_queries -> task retrieval.query,
    # encode_documents -> retrieval.passage. fastembed >= 0.6 (above). chromadb >= 1.0,
    # chromadb/utils/embedding_functions/jina_embedding_function.py: __call__ sends task=, embed_query()
    # overrides it with query_config.
    milvus = (
        "from pymilvus import model\n"
        f'ef = model.dense.JinaEmbeddingFunction(model_name="{V2}")\n'
        "d = ef.encode_documents(docs)\nq = ef.encode_queries(queries)\n"
    )
    fastembed = (
        "from fastembed import TextEmbedding\n"
        'fe = TextEmbedding("jinaai/jina-embeddings-v2-small-en")\n'
        "d = list(fe.passage_embed(docs))\nq = list(fe.query_embed(queries))\n"
    )
    chroma = (
        "from chromadb.utils.embedding_functions import JinaEmbeddingFunction\n"
        f'ef = JinaEmbeddingFunction(model_name="{V2}")\nd = ef(docs)\nq = ef.embed_query(queries)\n'
    )
    for name, src in (("m.py", milvus), ("f.py", fastembed), ("c.py", chroma)):
        assert findings(tmp_path, name, src, "JM501") == [], name


def test_jm501_tells_sentence_transformers_users_to_pass_the_task_per_call(tmp_path: Path) -> None:
    # sentence-transformers >= 3 with jinaai/jina-embeddings-v3's custom code: encode(..., task=,
    # prompt_name=) picks the adapter per call, so one instance serves both sides.
    src = (
        "from sentence_transformers import SentenceTransformer\n"
        f'm = SentenceTransformer("jinaai/{V2}", trust_remote_code=True)\n'
        "d = m.embed_documents(docs)\nq = m.encode_query(question)\n"
    )
    [jm501] = findings(tmp_path, "st.py", src, "JM501")
    assert "Pass the task per call" in jm501.fix_title and "two" not in jm501.fix_title.lower()


def test_jm304_chroma_fix_sets_task_and_query_config(tmp_path: Path) -> None:
    # chromadb >= 1.0, jina_embedding_function.py: without task= and query_config the payload has no task.
    src = "from chromadb.utils.embedding_functions import JinaEmbeddingFunction\n"
    src += "ef = JinaEmbeddingFunction()\n"
    [jm304] = findings(tmp_path, "c.py", src, "JM304")
    assert 'task="retrieval.passage"' in jm304.fix_title
    assert 'query_config={"task": "retrieval.query"}' in jm304.fix_title


def test_jm305_weaviate_v3_and_v4_models_are_not_v2_findings(tmp_path: Path) -> None:
    # weaviate >= 1.26, usecases/modulecomponents/clients/jinaai: sends retrieval.passage (objects) and
    # retrieval.query (queries) for v3 models; default model jina-embeddings-v4 since 1.31.6.
    call = "Configure.Vectorizer.text2vec_jinaai(model={!r})\n"
    assert findings(tmp_path, "w.py", call.format("jina-embeddings-v4"), "JM305") == []
    [jm305] = findings(tmp_path, "w.py", call.format(V2), "JM305")
    assert "sends the retrieval tasks itself" in jm305.fix_title
    assert V2 in jm305.message


def test_jm203_encoding_type_is_an_alias_only_encoding_format_is_rejected(tmp_path: Path) -> None:
    # jinaai-api-schemas (TextEmbeddingInput): `embedding_type` with alias `encoding_type`; unknown fields
    # such as OpenAI's `encoding_format` are rejected (extra="forbid" -> 400).
    src = (
        "import httpx\n"
        'httpx.post("https://api.jina.ai/v1/embeddings", json={"model": "m", "input": x, '
        '"encoding_type": "float"})\n'
        'httpx.post("https://api.jina.ai/v1/embeddings", json={"model": "m", "input": x, '
        '"encoding_format": "float"})\n'
    )
    assert [f.line for f in findings(tmp_path, "h.py", src, "JM203")] == [3]


def test_jm204_openai_sdk_can_send_the_task_through_extra_body(tmp_path: Path) -> None:
    # openai-python 1.x, src/openai/resources/embeddings.py: create(..., extra_body=...) merges extra JSON
    # fields into the request body.
    src = 'from openai import OpenAI\nc = OpenAI(base_url="https://api.jina.ai/v1", api_key=k)\n'
    [jm204] = findings(tmp_path, "o.py", src, "JM204")
    assert 'extra_body={"task": "retrieval.passage"}' in jm204.fix_title


def test_jm311_reason_is_the_missing_official_ollama_model_not_gguf(tmp_path: Path) -> None:
    # llama.cpp convert_hf_to_gguf.py converts jina-embeddings-v3 with its task LoRAs; Ollama's library has
    # no official v3 model.
    from jmigrate.rules.registry import get_rule

    assert "GGUF export" not in get_rule("JM311").explanation
    assert "no official" in get_rule("JM311").explanation
    [jm311] = findings(tmp_path, "o.sh", f"ollama pull jina/{V2}\n", "JM311")
    assert jm311.applicability is Applicability.MANUAL


def test_models_point_only_to_published_figures() -> None:
    from jmigrate.models import MODELS

    note = MODELS["jina-embeddings-v2-base-code"].note
    assert "0.7753" in note and "0.7537" in note and "0.7564" not in note and "CodeSearchNet" not in note
    import jmigrate.models

    assert "docs/models.md" not in (jmigrate.models.__doc__ or "")


def test_jm311_ollama_embedders_get_task_advice(tmp_path: Path) -> None:
    src = (
        "from langchain_ollama import OllamaEmbeddings\n"
        'emb = OllamaEmbeddings(model="jina/jina-embeddings-v2-base-en")\n'
        "vecs = emb.embed_documents(chunks)\n"
    )
    [jm311] = findings(tmp_path, "o.py", src, "JM311")
    assert jm311.recommendation["task"] == "retrieval.passage"
