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
