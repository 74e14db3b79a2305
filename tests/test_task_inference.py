"""Task inference: the v3 task recommended for each v2 call site, and the reason given for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from jmigrate.scan.plan import plan

V2 = "jina-embeddings-v2-base-en"
ST = f'from sentence_transformers import SentenceTransformer\nmodel = SentenceTransformer("jinaai/{V2}")\n'


def recommend(tmp_path: Path, source: str, name: str = "app.py") -> dict[str, object]:
    (tmp_path / name).write_text(source, encoding="utf-8")
    result = plan(tmp_path / name, select=["JM101"])
    assert result.findings, "expected a JM101 finding"
    return result.findings[0].recommendation


CASES = {
    "clustering": (
        ST + "from sklearn.cluster import KMeans\nvecs = model.encode(texts)\n"
        "labels = KMeans(n_clusters=8).fit_predict(vecs)\n",
        "separation",
        "vectors passed to KMeans().fit_predict() on line 5",
    ),
    "hdbscan on an object": (
        ST + "import hdbscan\nclusterer = hdbscan.HDBSCAN(min_cluster_size=5)\n"
        "emb = model.encode(docs)\nclusterer.fit(emb)\n",
        "separation",
        "clusterer.fit() on line 6",
    ),
    "umap": (
        ST + "import umap\nreducer = umap.UMAP()\nxy = reducer.fit_transform(model.encode(texts))\n",
        "separation",
        "reducer.fit_transform() on line 5",
    ),
    "classifier": (
        ST + "from sklearn.linear_model import LogisticRegression\nX = model.encode(texts)\n"
        "clf = LogisticRegression()\nclf.fit(X, y)\n",
        "classification",
        "classifier clf.fit() on line 6",
    ),
    "similarity": (
        ST + "from sentence_transformers import util\na = model.encode(s1)\nb = model.encode(s2)\n"
        "scores = util.cos_sim(a, b)\n",
        "text-matching",
        "util.cos_sim() on line 6",
    ),
    "matmul": (ST + "e = model.encode(sentences)\nsim = e @ e.T\n", "text-matching", "'@' on line 4"),
    "faiss index add": (
        ST + "import faiss\nindex = faiss.IndexFlatIP(1024)\nindex.add(model.encode(chunks))\n",
        "retrieval.passage",
        "index.add() on line 5",
    ),
    "faiss search": (
        ST + "qv = model.encode([question])\nD, I = index.search(qv, 10)\n",
        "retrieval.query",
        "index.search() on line 4",
    ),
    "argument names": (
        ST + "query_vectors = model.encode(queries)\n",
        "retrieval.query",
        "'queries' (argument name)",
    ),
    "function names": (
        ST + "def deduplicate(texts):\n    return model.encode(texts)\n",
        "text-matching",
        "'deduplicate' (function name)",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_task_follows_how_vectors_are_used(tmp_path: Path, case: str) -> None:
    source, task, reason = CASES[case]
    rec = recommend(tmp_path, source)
    assert rec["task"] == task
    assert reason in str(rec["task_reason"])


def test_langchain_documents_and_queries_on_one_embedder_asks_for_two(tmp_path: Path) -> None:
    source = (
        "from langchain_community.embeddings import JinaEmbeddings\n"
        f'emb = JinaEmbeddings(model_name="{V2}")\n'
        "db = Chroma.from_documents(docs, emb)\nhits = db.similarity_search(q)\n"
    )
    rec = recommend(tmp_path, source)
    assert rec["task"] is None
    assert rec["tasks"] == {"documents": "retrieval.passage", "queries": "retrieval.query"}
    assert "Chroma.from_documents() on line 3 stores documents" in str(rec["task_reason"])
    assert "db.similarity_search() on line 4" in str(rec["task_reason"])


def test_model_constant_is_followed_to_the_calls_that_use_it(tmp_path: Path) -> None:
    source = (
        f'MODEL = "{V2}"\nfrom langchain_community.embeddings import JinaEmbeddings\n'
        "emb = JinaEmbeddings(model_name=MODEL)\nv = emb.embed_documents(chunks)\n"
    )
    rec = recommend(tmp_path, source)
    assert rec["task"] == "retrieval.passage" and "emb.embed_documents() on line 4" in str(rec["task_reason"])


def test_http_wrapper_function_is_judged_by_its_callers(tmp_path: Path) -> None:
    source = (
        "import requests\n"
        "def embed(texts):\n"
        '    r = requests.post("https://api.jina.ai/v1/embeddings",\n'
        f'                      json={{"model": "{V2}", "input": texts}})\n'
        '    return [d["embedding"] for d in r.json()["data"]]\n'
        "vectors = embed(texts)\n"
        "groups = KMeans(4).fit_predict(vectors)\n"
    )
    rec = recommend(tmp_path, source)
    assert rec["task"] == "separation" and "line 7" in str(rec["task_reason"])


def test_unclear_use_says_so_and_gives_both_sides(tmp_path: Path) -> None:
    rec = recommend(tmp_path, f'MODEL = "{V2}"\n')
    assert rec["task"] is None
    assert str(rec["task_reason"]).startswith("no use of the vectors found in this file")
    assert rec["tasks"] == {"documents": "retrieval.passage", "queries": "retrieval.query"}
    assert rec["model"] == "jina-embeddings-v3"
    assert rec["dimensions"] == {"default": 1024, "keep_schema": 768}
    assert "licence" not in rec  # nothing proposes local v3 weights


def test_local_loaders_carry_the_licence_note_and_bilingual_models_say_why(tmp_path: Path) -> None:
    source = (
        "from sentence_transformers import SentenceTransformer\n"
        'm = SentenceTransformer("jinaai/jina-embeddings-v2-base-zh")\n'
    )
    (tmp_path / "zh.py").write_text(source, encoding="utf-8")
    [finding] = plan(tmp_path / "zh.py", select=["JM103"]).findings
    assert "CC BY-NC 4.0" in finding.recommendation["licence"]
    assert "v3 covers both languages" in finding.recommendation["note"]


def test_code_model_recommendation_is_to_keep_it(tmp_path: Path) -> None:
    (tmp_path / "c.py").write_text('M = "jinaai/jina-embeddings-v2-base-code"\n', encoding="utf-8")
    [finding] = plan(tmp_path / "c.py").findings
    assert finding.code == "JM104" and finding.recommendation["keep"] is True
    assert "0.7753" in finding.recommendation["reason"]


def test_javascript_files_are_judged_by_the_calls_they_make(tmp_path: Path) -> None:
    source = (
        f'const emb = new JinaEmbeddings({{ model: "{V2}" }});\nconst v = await emb.embedQuery(question);\n'
    )
    rec = recommend(tmp_path, source, "q.ts")
    assert rec["task"] == "retrieval.query" and "embedQuery on line 2" in str(rec["task_reason"])


def test_http_request_recommendation_names_the_fields_to_drop(tmp_path: Path) -> None:
    source = (
        "import requests\n"
        "def index_chunks(chunks):\n"
        '    body = {"model": "jina-embeddings-v2-small-en", "input": chunks, "normalized": True,\n'
        '            "encoding_format": "float"}\n'
        '    return requests.post("https://api.jina.ai/v1/embeddings", json=body)\n'
    )
    (tmp_path / "r.py").write_text(source, encoding="utf-8")
    [request] = plan(tmp_path / "r.py", select=["JM201"]).findings
    rec = request.recommendation
    assert rec["task"] == "retrieval.passage" and rec["task_reason"] == "called in function index_chunks()"
    # One piece of advice per field: normalized is dropped, encoding_format renamed (as JM203 says).
    assert rec["drop_fields"] == ["normalized"]
    assert rec["rename_fields"] == {"encoding_format": "embedding_type"}
    assert rec["from_model"] == "jina-embeddings-v2-small-en"
    assert rec["dimensions"] == {"default": 1024, "keep_schema": 512}
    assert request.edits[0].replacement == '"task": "retrieval.passage", '  # in front of "model"


@pytest.mark.parametrize(
    "score",
    ["s = doc_vecs @ query_vec\n", "s = np.dot(doc_vecs, query_vec)\n", "s = doc_vecs @ query_vec.T\n"],
)
def test_a_product_of_documents_and_a_query_is_retrieval(tmp_path: Path, score: str) -> None:
    # Issue 12: `@` on the vectors overrode the names and recommended text-matching for brute-force search.
    source = ST + "import numpy as np\ndoc_vecs = model.encode(docs)\nquery_vec = model.encode(query)\n"
    rec = recommend(tmp_path, source + score)
    assert rec["task"] is None
    assert rec["tasks"] == {"documents": "retrieval.passage", "queries": "retrieval.query"}
    assert "text-matching" not in str(rec["task_reason"]).split(";")[0]
