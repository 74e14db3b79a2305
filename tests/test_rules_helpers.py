"""Embedding helpers and their callers across modules (issue 12): a function that embeds its argument through
a v2 model (a local model, a raw request to /v1/embeddings) is reported at every call in the repository with
the side that call serves, and the helper's own findings merge those sides (never its `__main__` demo
alone)."""

from __future__ import annotations

from pathlib import Path

from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.plan import plan

V2 = "jinaai/jina-embeddings-v2-base-en"

REQUEST_HELPER = (
    "import requests\n"
    "URL = 'https://api.jina.ai/v1/embeddings'\n"
    "def get_embedding(text):\n"
    "    data = {'input': text, 'model': 'jina-embeddings-v2-base-en'}\n"
    "    return requests.post(URL, json=data).json()['data'][0]['embedding']\n"
)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _by_place(root: Path) -> dict[tuple[str, str, int], Finding]:
    return {(f.code, f.path, f.line): f for f in plan(root).findings}


def test_request_helper_callers_in_other_modules_get_their_side(tmp_path: Path) -> None:
    _write(tmp_path, {
        "app/__init__.py": "",
        "app/utils/__init__.py": "",
        "app/utils/embed.py": REQUEST_HELPER,
        "app/ingest.py": (
            "from app.utils.embed import get_embedding\n"
            "def load(articles, qdrant):\n"
            "    for a in articles:\n"
            "        qdrant.upsert('news', points=[get_embedding(a['text'])])\n"
        ),
        "app/chat.py": (
            "import app.utils.embed as emb\n"
            "def ask(user_query, qdrant):\n"
            "    return qdrant.search('news', query_vector=emb.get_embedding(user_query))\n"
        ),
    })
    found = _by_place(tmp_path)
    ingest, chat = found["JM504", "app/ingest.py", 4], found["JM504", "app/chat.py", 3]
    assert ingest.recommendation["task"] == "retrieval.passage" and "get_embedding()" in ingest.message
    assert chat.recommendation["task"] == "retrieval.query" and "/v1/embeddings" in chat.message
    assert "task parameter" in chat.fix_title and chat.applicability is Applicability.MANUAL
    # The helper's own request and model id say both sides, with where they are called from.
    for key in (("JM201", "app/utils/embed.py", 5), ("JM101", "app/utils/embed.py", 4)):
        rec = found[key].recommendation
        assert rec["task"] is None and rec["tasks"] == {"documents": "retrieval.passage",
                                                       "queries": "retrieval.query"}
        assert "app/ingest.py:4" in rec["task_reason"] and "app/chat.py:3" in rec["task_reason"]
    assert "task parameter" in found["JM201", "app/utils/embed.py", 5].fix_title
    assert not found["JM201", "app/utils/embed.py", 5].edits


def test_one_side_everywhere_is_that_side_for_the_helper(tmp_path: Path) -> None:
    _write(tmp_path, {
        "embed.py": REQUEST_HELPER,
        "ingest.py": (
            "from embed import get_embedding\n"
            "def load(docs, index):\n"
            "    index.add([get_embedding(d) for d in docs])\n"
        ),
    })
    found = _by_place(tmp_path)
    assert found["JM504", "ingest.py", 3].recommendation["task"] == "retrieval.passage"
    helper = found["JM201", "embed.py", 5]
    assert helper.recommendation["task"] == "retrieval.passage"
    assert "every call of get_embedding()" in helper.recommendation["task_reason"]


def test_main_demo_does_not_decide_the_task_of_a_shared_helper(tmp_path: Path) -> None:
    _write(tmp_path, {
        "hf_model.py": (
            "from sentence_transformers import SentenceTransformer\n"
            "def embed_text(text):\n"
            "    model = SentenceTransformer(\n"
            f"        {V2!r}, trust_remote_code=True)\n"
            "    return model.encode(text)\n"
            "if __name__ == '__main__':\n"
            "    query_text = 'what is late chunking?'\n"
            "    print(embed_text(query_text))\n"
        ),
        "load.py": (
            "from hf_model import embed_text\n"
            "rows = [{'lyrics': 'la la'}]\n"
            "vectors = [embed_text(r['lyrics']) for r in rows]\n"
            "for i, vector in enumerate(vectors):\n"
            "    client.upsert(collection_name='songs', points=[{'id': i, 'vector': vector}])\n"
        ),
    })
    found = _by_place(tmp_path)
    assert found["JM504", "load.py", 3].recommendation["task"] == "retrieval.passage"
    assert found["JM504", "hf_model.py", 8].recommendation["task"] == "retrieval.query"
    inner = found["JM504", "hf_model.py", 5]
    assert inner.recommendation["task"] is None and "load.py:3" in inner.message
    assert "hf_model.py:8" in inner.message and "task parameter" in inner.fix_title
    model_id = found["JM101", "hf_model.py", 4]
    assert model_id.recommendation["task"] is None and "task=retrieval.query;" not in model_id.fix_title


def test_ambiguous_names_resolve_to_nothing(tmp_path: Path) -> None:
    _write(tmp_path, {
        "embed.py": REQUEST_HELPER + "def get_embedding(text):\n    return [0.0] * 768\n",
        "other.py": REQUEST_HELPER,
        "use.py": (
            "from embed import get_embedding\n"
            "import other as m\n"
            "import embed as m\n"
            "def load(docs, index):\n"
            "    index.add(get_embedding(docs))\n"
            "    index.add(m.get_embedding(docs))\n"
        ),
    })
    assert [f for f in plan(tmp_path).findings if f.path == "use.py"] == []


def test_notebook_helper_defined_in_one_cell_and_called_in_others(tmp_path: Path) -> None:
    import json

    def cell(*lines: str) -> dict[str, object]:
        return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                "source": [line + "\n" for line in lines]}

    nb = {"cells": [
        cell("import requests",
             "def embed(texts):",
             "    body = {'model': 'jina-embeddings-v2-base-en', 'input': texts}",
             "    return requests.post('https://api.jina.ai/v1/embeddings', json=body).json()"),
        cell("store.add(embed(chunks))"),
        cell("hits = store.search(embed([question]))"),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "rag.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    found = {f.cell: f for f in plan(tmp_path, select=["JM504"]).findings}
    assert {c: f.recommendation["task"] for c, f in found.items()} == {2: "retrieval.passage",
                                                                       3: "retrieval.query"}
    [request] = plan(tmp_path, select=["JM201"]).findings
    assert request.recommendation["task"] is None and "several sides" in request.recommendation["task_reason"]
