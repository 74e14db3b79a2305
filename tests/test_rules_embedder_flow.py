"""JM501 and the task advice follow one embedder to where it embeds documents and queries: LlamaIndex's
global Settings.embed_model (within a notebook, across cells), Ollama / HuggingFace embedders, and (below)
embedders created in one module and used in others."""

from __future__ import annotations

import json
from pathlib import Path

from jmigrate.scan.plan import plan


def notebook(path: Path, *cells: str) -> None:
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
             "source": c.splitlines(keepends=True)}
            for c in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def test_settings_embed_model_serves_the_index_and_the_query_engine_across_cells(tmp_path: Path) -> None:
    notebook(
        tmp_path / "rag.ipynb",
        "from llama_index.core import Settings, VectorStoreIndex\n"
        "from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n"
        'emb = HuggingFaceEmbedding(model_name="jinaai/jina-embeddings-v2-base-de")\n'
        "Settings.embed_model = emb\n"
        "index = VectorStoreIndex.from_documents(docs)\n",
        "engine = index.as_query_engine()\n",
        'print(engine.query("Wo ist das Buch?"))\n',
    )
    result = plan(tmp_path)
    [jm501] = [f for f in result.findings if f.code == "JM501"]
    assert (jm501.cell, jm501.cell_line) == (1, 3)
    assert "from_documents" in jm501.message and "cell 2" in jm501.message
    assert "two JinaEmbedding instances" in jm501.fix_title
    [name] = [f for f in result.findings if f.code == "JM103"]
    assert name.recommendation["tasks"] == {"documents": "retrieval.passage", "queries": "retrieval.query"}


def test_settings_embed_model_assigned_the_constructor_directly(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from llama_index.core import Settings, VectorStoreIndex\n"
        "from llama_index.embeddings.ollama import OllamaEmbedding\n"
        "class Pipeline:\n"
        "    def start(self):\n"
        '        Settings.embed_model = OllamaEmbedding(model_name="jina/jina-embeddings-v2-base-en")\n'
        "        self.index = VectorStoreIndex.from_documents(self.docs)\n"
        "    def ask(self, q):\n"
        "        return self.index.as_query_engine().query(q)\n",
        encoding="utf-8",
    )
    [jm501] = [f for f in plan(tmp_path).findings if f.code == "JM501"]
    assert jm501.line == 5 and "Ollama has no official" in jm501.fix_title


def test_an_index_without_the_global_embedder_is_not_its_use(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from llama_index.core import VectorStoreIndex\n"
        "from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n"
        'emb = HuggingFaceEmbedding(model_name="jinaai/jina-embeddings-v2-base-en")\n'
        "vectors = emb.get_text_embedding_batch(chunks)\n"
        "index = VectorStoreIndex.from_documents(docs)\n"
        "engine = index.as_query_engine()\n",
        encoding="utf-8",
    )
    assert [f for f in plan(tmp_path).findings if f.code == "JM501"] == []


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


def test_module_level_embedder_behind_a_store_function_used_in_two_other_modules(tmp_path: Path) -> None:
    write(tmp_path, "store/db.py",
          "from langchain_chroma import Chroma\nfrom langchain_ollama import OllamaEmbeddings\n"
          'embeddings = OllamaEmbeddings(model="jina/jina-embeddings-v2-base-en")\n'
          "_db = None\n"
          "def get_db():\n"
          "    global _db\n"
          "    if _db is None:\n"
          '        _db = Chroma(collection_name="docs", embedding_function=embeddings)\n'
          "    return _db\n")
    write(tmp_path, "ingest/load.py",
          "from store.db import get_db\n\ndef load(chunks):\n    get_db().add_documents(chunks)\n")
    write(tmp_path, "app/answer.py",
          "from store.db import get_db\n\ndef answer(q):\n"
          "    retriever = get_db().as_retriever()\n    return retriever.invoke(q)\n")
    write(tmp_path, "app/other.py",
          "from store.other import get_db\n\ndef x(q):\n    get_db().as_retriever()\n")
    result = plan(tmp_path)
    [jm501] = [f for f in result.findings if f.code == "JM501"]
    assert (jm501.path, jm501.line) == ("store/db.py", 3)
    assert "ingest/load.py" in jm501.message and "app/answer.py" in jm501.message
    assert "app/other.py" not in jm501.message
    assert "Ollama has no official" in jm501.fix_title
    [tag] = [f for f in result.findings if f.code == "JM311" and f.path == "store/db.py"]
    assert tag.recommendation["tasks"] == {"documents": "retrieval.passage", "queries": "retrieval.query"}
    assert "ingest/load.py" in tag.recommendation["task_reason"]


def test_factory_function_returning_the_embedder(tmp_path: Path) -> None:
    write(tmp_path, "emb.py",
          "from langchain_huggingface import HuggingFaceEmbeddings\n"
          "def get_embedding_function():\n"
          '    return HuggingFaceEmbeddings(model_name="jinaai/jina-embeddings-v2-base-de")\n')
    write(tmp_path, "populate.py",
          "from langchain_chroma import Chroma\nfrom emb import get_embedding_function\n"
          "db = Chroma(persist_directory='db', embedding_function=get_embedding_function())\n"
          "db.add_documents(chunks)\n")
    write(tmp_path, "chat.py",
          "from langchain_chroma import Chroma\nfrom emb import get_embedding_function\n"
          "def ask(q):\n"
          "    db = Chroma(persist_directory='db', embedding_function=get_embedding_function())\n"
          "    return db.similarity_search_with_score(q, k=5)\n")
    [jm501] = [f for f in plan(tmp_path).findings if f.code == "JM501"]
    assert (jm501.path, jm501.line) == ("emb.py", 3) and "query_encode_kwargs" in jm501.fix_title


def test_used_for_one_side_elsewhere_gives_that_task_and_no_jm501(tmp_path: Path) -> None:
    write(tmp_path, "emb.py",
          "from langchain_community.embeddings import JinaEmbeddings\n"
          'query_embedder = JinaEmbeddings(model_name="jina-embeddings-v2-base-es")\n')
    write(tmp_path, "search.py",
          "from emb import query_embedder\n\ndef find(q, store):\n"
          "    return store.similarity_search_by_vector(query_embedder.embed_query(q))\n")
    found = plan(tmp_path).findings
    assert not [f for f in found if f.code == "JM501"]
    [name] = [f for f in found if f.code == "JM103"]
    assert name.recommendation["task"] == "retrieval.query"
    assert "search.py" in name.recommendation["task_reason"]


def test_model_given_through_a_parameters_object_built_with_keyword_fields(tmp_path: Path) -> None:
    notebook(
        tmp_path / "rag.ipynb",
        "import os\n"
        "from llama_index.core import Settings, VectorStoreIndex\n"
        "from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n"
        "class Pipe:\n"
        "    def __init__(self):\n"
        "        self.params = Params(\n"
        '            EMBED=os.getenv("EMBED", "jinaai/jina-embeddings-v2-small-en"),\n'
        "        )\n"
        "    def start(self):\n"
        "        Settings.embed_model = HuggingFaceEmbedding(model_name=self.params.EMBED)\n"
        "        self.index = VectorStoreIndex.from_documents(self.docs)\n"
        "    def ask(self, q):\n"
        "        return self.index.as_query_engine().query(q)\n",
    )
    [jm501] = [f for f in plan(tmp_path).findings if f.code == "JM501"]
    assert (jm501.cell, jm501.cell_line) == (1, 10)


def test_a_model_rebound_by_unknown_code_is_not_guessed(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from llama_index.core import Settings, VectorStoreIndex\n"
        "from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n"
        "def start(name='jinaai/jina-embeddings-v2-small-en'):\n"
        "    name = pick(name)\n"
        "    Settings.embed_model = HuggingFaceEmbedding(model_name=name)\n"
        "    return VectorStoreIndex.from_documents(docs).as_query_engine()\n",
        encoding="utf-8",
    )
    assert [f for f in plan(tmp_path).findings if f.code == "JM501"] == []


def test_the_projects_own_class_named_like_an_integration_is_not_that_integration(tmp_path: Path) -> None:
    write(tmp_path, "config.py", 'BASE = "jinaai/jina-embeddings-v2-base-en"\n')
    write(tmp_path, "wrappers.py", "class JinaEmbedding:\n    def __init__(self, model_name):\n"
          "        self.model_name = model_name\n")
    write(tmp_path, "compare.py",
          "import config\nfrom wrappers import JinaEmbedding\n"
          "emb = JinaEmbedding(model_name=config.BASE)  # our jina wrapper\n")
    assert not [f for f in plan(tmp_path).findings if f.code == "JM302"]


def test_embedder_handed_to_a_class_or_function_of_another_module(tmp_path: Path) -> None:
    write(tmp_path, "rag/services/store.py",
          "from langchain_chroma import Chroma\n"
          "class StoreService:\n"
          "    def __init__(self, embedding_function, path):\n"
          "        self.embedding_function = embedding_function\n"
          "    def build(self, chunks):\n"
          "        return Chroma.from_documents(chunks, embedding=self.embedding_function)\n")
    write(tmp_path, "rag/services/index.py",
          "def index_all(chunks, store, embedder):\n    store.add_texts(chunks)\n")
    write(tmp_path, "rag/pipeline.py",
          "from langchain_community.embeddings import JinaEmbeddings\n"
          "from rag.services.store import StoreService\n"
          "class Pipeline:\n"
          "    def setup(self):\n"
          '        self.emb = JinaEmbeddings(model_name="jina-embeddings-v2-base-en")\n'
          "        self.service = StoreService(embedding_function=self.emb, path='db')\n")
    [jm501] = [f for f in plan(tmp_path).findings if f.code == "JM501"]
    assert (jm501.path, jm501.line) == ("rag/pipeline.py", 5)
    assert "rag/services/store.py: Chroma.from_documents()" in jm501.message


def test_model_from_a_dotenv_value_through_a_config_module_that_never_says_jina(tmp_path: Path) -> None:
    write(tmp_path, ".env.example", 'EMBED_MODEL="jinaai/jina-embeddings-v2-base-en"\nOTHER=1\n')
    write(tmp_path, "app/config.py", "import os\nEMBED_MODEL = os.getenv('EMBED_MODEL')\n")
    write(tmp_path, "app/indexer.py",
          "from sentence_transformers import SentenceTransformer\nfrom app.config import EMBED_MODEL\n"
          "model = SentenceTransformer(EMBED_MODEL, trust_remote_code=True)\n"
          "def index(chunks, store):\n    store.upsert(model.encode(chunks))\n")
    write(tmp_path, "app/unrelated.py", "import os\nX = os.getenv('OTHER')\n")
    found = {(f.code, f.path, f.line) for f in plan(tmp_path).findings}
    assert ("JM504", "app/indexer.py", 5) in found
    assert not any(p == "app/unrelated.py" for _, p, _ in found)


def test_after_apply_the_huggingface_embedders_are_not_a_false_zero(tmp_path: Path) -> None:
    write(tmp_path, "emb.py",
          "from langchain_huggingface import HuggingFaceEmbeddings\n"
          "def get_embedding_function():\n"
          '    return HuggingFaceEmbeddings(model_name="jinaai/jina-embeddings-v2-base-de")\n')
    write(tmp_path, "chat.py",
          "from langchain_chroma import Chroma\nfrom emb import get_embedding_function\n"
          "db = Chroma(embedding_function=get_embedding_function())\n"
          "db.add_documents(chunks)\nhits = db.similarity_search(q)\n")
    from test_rules import apply_all

    from jmigrate.scan.finding import Applicability

    first = plan(tmp_path)
    apply_all(tmp_path, first)
    again = plan(tmp_path)
    assert {(f.code, f.path, f.line) for f in again.findings} == {("JM502", "emb.py", 3)}
    assert all(f.applicability is Applicability.MANUAL for f in again.findings)


def test_settings_embed_model_set_in_one_module_used_by_indexes_built_in_others(tmp_path: Path) -> None:
    write(tmp_path, "app/setup.py",
          "from llama_index.core import Settings\n"
          "from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n"
          "def configure():\n"
          '    Settings.embed_model = HuggingFaceEmbedding(model_name="jinaai/jina-embeddings-v2-base-en")\n')
    write(tmp_path, "app/build.py",
          "from llama_index.core import VectorStoreIndex\n"
          "def build(docs):\n    return VectorStoreIndex.from_documents(docs)\n")
    write(tmp_path, "app/ask.py",
          "from llama_index.core import StorageContext, load_index_from_storage\n"
          "def ask(q):\n"
          "    index = load_index_from_storage(StorageContext.from_defaults(persist_dir='idx'))\n"
          "    return index.as_query_engine().query(q)\n")
    [jm501] = [f for f in plan(tmp_path).findings if f.code == "JM501"]
    assert (jm501.path, jm501.line) == ("app/setup.py", 4)
    assert "app/build.py" in jm501.message and "app/ask.py" in jm501.message
