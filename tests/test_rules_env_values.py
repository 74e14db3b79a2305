"""A model id set in an env file (.env, docker compose `environment:`, Dockerfile ENV) reaches the code
through os.getenv / os.environ / a pydantic settings field: the integration or loader fed by it is a v2 one,
with its finding on the constructor's line, across modules, also in files that never say "jina"."""

from __future__ import annotations

from pathlib import Path

from jmigrate.scan.plan import plan

V2 = "jinaai/jina-embeddings-v2-base-en"


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def lines(root: Path, code: str) -> set[tuple[str, int]]:
    return {(f.path, f.line) for f in plan(root).findings if f.code == code}


def test_env_example_value_through_a_config_module_and_a_parameter_default(tmp_path: Path) -> None:
    # No Python file names the model: only .env.example does.
    write(tmp_path, {
        ".env.example": f'DATA_PATH = "./data.csv"\nMODEL_EMBEDDING = "{V2}"\n',
        "app/__init__.py": "",
        "app/config.py": "import os\n\nMODEL_EMBEDDING = os.getenv('MODEL_EMBEDDING')\n",
        "app/embeddings.py": (
            "from langchain_huggingface import HuggingFaceEmbeddings\n"
            "from app.config import MODEL_EMBEDDING\n"
            "\n"
            "class Embedder:\n"
            "    def __init__(self, model_name=MODEL_EMBEDDING):\n"
            "        self.emb = HuggingFaceEmbeddings(\n"
            "            model_name=model_name,\n"
            "        )\n"
        ),
    })
    assert lines(tmp_path, "JM312") == {("app/embeddings.py", 6)}


def test_compose_environment_and_os_environ_feed_a_local_loader(tmp_path: Path) -> None:
    write(tmp_path, {
        "docker-compose.yml": (
            "services:\n  api:\n    build: ./api\n    environment:\n"
            f"      - EMBED_MODEL={V2}\n      - OTHER=1\n"
        ),
        "api/main.py": (
            "import os\nfrom sentence_transformers import SentenceTransformer\n\n"
            "model = SentenceTransformer(os.environ['EMBED_MODEL'], trust_remote_code=True)\n\n"
            "def index(docs):\n    return model.encode(docs)\n"
        ),
    })
    assert lines(tmp_path, "JM504") == {("api/main.py", 7)}


def test_dockerfile_env_sets_a_pydantic_settings_field_read_by_ollama(tmp_path: Path) -> None:
    write(tmp_path, {
        "Dockerfile": "FROM python:3.12\nENV EMBED_MODEL=jina/jina-embeddings-v2-base-de\n",
        "settings.py": (
            "from pydantic_settings import BaseSettings\n\n"
            "class Settings(BaseSettings):\n    embed_model: str = 'nomic-embed-text'\n\n"
            "settings = Settings()\n"
        ),
        "rag.py": (
            "from langchain_ollama import OllamaEmbeddings\nfrom settings import settings\n\n"
            "emb = OllamaEmbeddings(\n    model=settings.embed_model,\n)\n"
        ),
    })
    assert lines(tmp_path, "JM311") == {("rag.py", 4), ("Dockerfile", 2)}


def test_star_import_of_a_constant_module(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/globals.py": 'EMBEDDER_MODEL_JINA = "jina/jina-embeddings-v2-base-en:latest"\n',
        "pkg/pipeline.py": (
            "from llama_index.embeddings.ollama import OllamaEmbedding\nfrom pkg.globals import *\n\n"
            "def embedder_jina():\n    return OllamaEmbedding(\n"
            "        model_name=EMBEDDER_MODEL_JINA,\n    )\n"
        ),
    })
    assert lines(tmp_path, "JM311") == {("pkg/globals.py", 1), ("pkg/pipeline.py", 5)}


def test_env_files_elsewhere_or_commented_do_not_count(tmp_path: Path) -> None:
    write(tmp_path, {
        "other/.env": f"EMBED_MODEL={V2}\n",  # not a folder above the code: never loaded for it
        "svc/.env": f"# EMBED_MODEL={V2}\nEMBED_MODEL=sentence-transformers/all-MiniLM-L6-v2\n",
        "svc/app.py": (
            "import os\nfrom langchain_huggingface import HuggingFaceEmbeddings\n\n"
            "emb = HuggingFaceEmbeddings(model_name=os.getenv('EMBED_MODEL'))\n"
        ),
    })
    assert lines(tmp_path, "JM312") == set()
    # once the model is v3 in the env file, the loader is not a v2 one
    write(tmp_path, {"svc/.env": "EMBED_MODEL=jinaai/jina-embeddings-v3\n",
                     "other/.env": "", "svc/.env.example": f"EMBED_MODEL={V2}\n"})
    assert lines(tmp_path, "JM312") == set()
