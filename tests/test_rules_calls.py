"""JM504 (a call embedding through a local v2 model needs its own task) and the value flow behind it:
`self.model`, lazy loading, format strings fed by a loop, `import config` / imported constants and
models, notebooks; and the hand-over to JM502 once `apply` renamed the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_rules import FIXTURES, apply_all

from jmigrate.scan.finding import Applicability
from jmigrate.scan.plan import plan

V2 = "jinaai/jina-embeddings-v2-base-en"


def lines(result, code: str) -> set[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return {(f.path, f.line) for f in result.findings if f.code == code}


def test_after_apply_jm502_takes_over_the_same_calls_never_both(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "JM504.py", tmp_path / "app.py")
    first = plan(tmp_path)
    before = lines(first, "JM504")
    assert before and not lines(first, "JM502")
    apply_all(tmp_path, first)
    again = plan(tmp_path)
    assert lines(again, "JM504") == set()  # every model of the fixture was renamed
    # fastembed's embed() of documents is right on v3 (it applies retrieval.passage): no JM502 there.
    source = (tmp_path / "app.py").read_text(encoding="utf-8").splitlines()
    passage = {("app.py", n) for n, s in enumerate(source, 1) if "self.fast.embed(docs)" in s}
    assert passage and before - passage <= lines(again, "JM502")
    by_line: dict[int, set[str]] = {}
    for f in again.findings:
        by_line.setdefault(f.line, set()).add(f.code)
    assert not any({"JM502", "JM504"} <= codes for codes in by_line.values())
    assert all(f.applicability is Applicability.MANUAL for f in again.findings)


def test_each_call_gets_the_task_of_its_own_use(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from sentence_transformers import SentenceTransformer\n"
        f"model = SentenceTransformer({V2!r}, trust_remote_code=True)\n"
        "def index(chunks, store):\n"
        "    store.add(model.encode(chunks))\n"
        "def ask(question, store):\n"
        "    return store.search(model.encode(question))\n"
        "def topics(texts):\n"
        "    return KMeans(8).fit_predict(model.encode(texts))\n",
        encoding="utf-8",
    )
    found = {f.line: f for f in plan(tmp_path, select=["JM504"]).findings}
    assert {n: f.recommendation["task"] for n, f in found.items()} == {
        4: "retrieval.passage",
        6: "retrieval.query",
        8: "separation",
    }
    assert 'prompt_name=' in found[4].fix_title and "line 2" in found[4].message


def test_notebook_call_in_a_later_cell_is_reported_in_that_cell(tmp_path: Path) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["from sentence_transformers import SentenceTransformer\n",
                    f"model = SentenceTransformer({V2!r}, trust_remote_code=True)\n"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["Embed the corpus"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["corpus_vecs = model.encode(corpus)\n"]},
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    [f] = plan(tmp_path, select=["JM504"]).findings
    assert (f.cell, f.cell_line) == (3, 1) and "cell 1" in f.message
    assert f.recommendation["task"] == "retrieval.passage"


def test_model_id_through_import_config_and_an_or_default(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        f'import os\nBASE_MODEL = os.getenv("BASE_MODEL", {V2!r})\n', encoding="utf-8"
    )
    (tmp_path / "wrapper.py").write_text(
        "import config\nfrom transformers import AutoModel\n"
        "class Jina:  # a jina wrapper\n"
        "    def __init__(self, name=None, path=None):\n"
        "        self.name = name or config.BASE_MODEL\n"
        "        self.model = AutoModel.from_pretrained(path if path else self.name)\n"
        "    def embed_documents(self, texts):\n"
        "        return self.model(**self.tok(texts)).last_hidden_state.mean(1)\n",
        encoding="utf-8",
    )
    [f] = plan(tmp_path, select=["JM504"]).findings
    assert (f.path, f.line) == ("wrapper.py", 8) and "forward pass" in f.message
    assert "may be loaded" in f.message and f.recommendation["task"] == "retrieval.passage"


def test_files_that_never_say_jina_but_import_a_v2_constant_or_model_are_scanned(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "pkg" / "settings.py").write_text(f"EMBED_MODEL = {V2!r}\n", encoding="utf-8")
    (tmp_path / "pkg" / "models.py").write_text(
        "from sentence_transformers import SentenceTransformer\n"
        f"encoder = SentenceTransformer({V2!r})\n",
        encoding="utf-8",
    )
    (tmp_path / "pkg" / "loader.py").write_text(
        "from sentence_transformers import SentenceTransformer\n"
        "from pkg.settings import EMBED_MODEL\n"
        "st = SentenceTransformer(EMBED_MODEL)\n"
        "vecs = st.encode(documents)\n",
        encoding="utf-8",
    )
    (tmp_path / "pkg" / "search.py").write_text(
        "from .models import encoder\n\ndef ask(question):\n    return encoder.encode(question)\n",
        encoding="utf-8",
    )
    (tmp_path / "pkg" / "unrelated.py").write_text(
        "from .settings import OTHER\nimport json\nx = json.dumps({})\n", encoding="utf-8"
    )
    result = plan(tmp_path)
    found = {(f.code, f.path, f.line) for f in result.findings if f.path != "pkg/settings.py"}
    assert ("JM308", "pkg/loader.py", 3) in found
    assert ("JM504", "pkg/loader.py", 4) in found
    assert ("JM504", "pkg/search.py", 4) in found
    assert not any(p == "pkg/unrelated.py" for _, p, _ in found)
    q = next(f for f in result.findings if (f.code, f.path) == ("JM504", "pkg/search.py"))
    assert q.recommendation["task"] == "retrieval.query" and "another module" in q.message


def test_calls_of_a_helper_that_embeds_its_argument_are_where_the_task_is_chosen(tmp_path: Path) -> None:
    (tmp_path / "embedder.py").write_text(
        "from sentence_transformers import SentenceTransformer\n"
        "def get_embedding(text):\n"
        f"    model = SentenceTransformer({V2!r}, trust_remote_code=True)\n"
        "    return model.encode(text)\n"
        "class Crawler:\n"
        "    def __init__(self):\n"
        f"        self.model = SentenceTransformer({V2!r}, trust_remote_code=True)\n"
        "    def crawl(self, urls):\n"
        "        for url in urls:\n"
        "            chunks = self.split(fetch(url))\n"
        "            self.store(self.model.encode(chunks))\n",
        encoding="utf-8",
    )
    (tmp_path / "ingest.py").write_text(
        "from embedder import Crawler, get_embedding\n"
        "def ingest(rows, qdrant):\n"
        "    for row in rows:\n"
        "        qdrant.upsert(points=[get_embedding(row['text'])])\n"
        "Crawler().crawl(['https://example.org'])\n",
        encoding="utf-8",
    )
    (tmp_path / "retrieve.py").write_text(
        "import embedder\nfrom embedder import get_embedding\n"
        "def search(question, qdrant):\n"
        "    return qdrant.search(query_vector=get_embedding(question))\n",
        encoding="utf-8",
    )
    found = {(f.path, f.line): f for f in plan(tmp_path, select=["JM504"]).findings}
    assert set(found) == {("embedder.py", 4), ("embedder.py", 11), ("ingest.py", 4), ("retrieve.py", 4)}
    assert found["ingest.py", 4].recommendation["task"] == "retrieval.passage"
    assert found["retrieve.py", 4].recommendation["task"] == "retrieval.query"
    assert "get_embedding()" in found["retrieve.py", 4].message


def test_settings_object_imported_from_a_config_module_in_a_parent_folder(tmp_path: Path) -> None:
    app = tmp_path / "service"
    (app / "services").mkdir(parents=True)
    (app / "config.py").write_text(
        "class Settings(BaseSettings):\n"
        f"    EMBED_MODEL: str = {V2!r}\n"
        "    EMBED_DIM: int = 768\n"
        "settings = Settings()\n",
        encoding="utf-8",
    )
    (app / "services" / "embedding.py").write_text(
        "from transformers import AutoModel\nfrom config import settings\n"
        "class Embedder:\n"
        "    def __init__(self):\n"
        "        self.model = AutoModel.from_pretrained(settings.EMBED_MODEL, trust_remote_code=True)\n"
        "    def embed_chunks(self, chunks):\n"
        "        return [self.model.encode(c) for c in chunks]\n",
        encoding="utf-8",
    )
    found = [(f.code, f.path, f.line) for f in plan(tmp_path, select=["JM504"]).findings]
    assert found == [("JM504", "service/services/embedding.py", 7)]


def test_model_id_from_an_imported_list_or_nested_dict_subscript(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "constants.py").write_text(
        f"AVAILABLE = [{V2!r}]\nMODELS = {{'jina': {{'hf': {V2!r}, 'ollama': 'x'}}}}\n", encoding="utf-8"
    )
    (tmp_path / "embed.py").write_text(
        "from transformers import AutoModel\nfrom configs.constants import AVAILABLE, MODELS\n"
        "class Embedder:\n"
        "    def __init__(self, model_name=AVAILABLE[0]):\n"
        "        self.model = AutoModel.from_pretrained(model_name, trust_remote_code=True)\n"
        "    def encode(self, text):\n"
        "        return self.model.encode(text)\n"
        "nested = AutoModel.from_pretrained(MODELS['jina']['hf'], trust_remote_code=True)\n"
        "vectors = nested.encode(documents)\n",
        encoding="utf-8",
    )
    found = {f.line for f in plan(tmp_path, select=["JM504"]).findings if f.path == "embed.py"}
    assert found == {7, 9}
