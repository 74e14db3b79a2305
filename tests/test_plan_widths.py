"""Vector widths in files that name no model: `plan` only parses such files when a byte test says a width
stands next to a vector/schema key, so every spelling JM401-JM403 accept must pass that test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jmigrate.cli.app import main
from jmigrate.scan.prefilter import legacy_widths, width_in_context

INDEX_PY = """\
import faiss
import numpy as np
import pyarrow as pa
from typing import Final

EMBEDDING_DIM: Final[int] = 768
VECTOR_SIZE = other = 768
emb_dim = (
    768
)
ivf = faiss.IndexIVFFlat(
    quantizer,
    768,
    100,
)
flat = faiss.IndexFlatIP(d=768)
params = VectorParams(
    distance=Distance.COSINE,
    size=768,
)
schema = pa.schema([pa.field("vector", pa.list_(pa.float32(), 768))])
column = "CREATE TABLE t (embedding vector( 768 ))"
buf = f.read(768)
for i in range(768):
    pass
"""


def test_widths_in_files_without_a_model_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n')
    (tmp_path / "index.py").write_text(INDEX_PY)
    (tmp_path / "settings.env").write_text("EMBEDDING_DIM=0768\nCHUNK=768\n")
    (tmp_path / "qdrant.yaml").write_text("vectors:\n  size:          768\n  distance: Cosine\n")
    code = main(["plan", "--format", "json", str(tmp_path)])
    found = {(f["path"], f["line"], f["code"]) for f in json.loads(capsys.readouterr().out)["findings"]}
    assert code == 1
    assert found == {
        ("model.py", 1, "JM101"),
        ("index.py", 6, "JM403"),  # annotated constant
        ("index.py", 7, "JM403"),  # chained assignment
        ("index.py", 9, "JM403"),  # value on its own line
        ("index.py", 13, "JM402"),  # positional FAISS width over several lines
        ("index.py", 16, "JM402"),  # FAISS d=
        ("index.py", 19, "JM402"),  # Qdrant size= inside VectorParams(
        ("index.py", 21, "JM402"),  # pyarrow list_(float32(), 768)
        ("index.py", 22, "JM401"),  # vector column in a string
        ("settings.env", 1, "JM403"),  # leading zero, as int() reads it
        ("qdrant.yaml", 2, "JM402"),  # a bare size key outside Python
    }


@pytest.mark.parametrize(
    "line",
    [b"f.read(512)", b"range(768)", b"bufsize=512", b"Memory(size=512)", b"[128, 256, 512]", b"x = 1768"],
)
def test_widths_that_are_not_vector_widths_are_not_parsed(line: bytes) -> None:
    assert not width_in_context(b"import os\n" + line + b"\n", legacy_widths(), "a.py")


STORES_PY = """\
import os

from pydantic import Field

EMBED_DIM = int(os.getenv("EMBED_DIM", "768"))
vector_size: int = Field(768, ge=1)
store = InMemoryDocumentStore(embedding_dim=768)
schema.add_field(field_name="vector", datatype=DataType.FLOAT_VECTOR, dim=768)
body = {"vectors": {"size": 768, "distance": "Cosine"}}
attrs = {"TYPE": "FLOAT32", "DIM": 768, "DISTANCE_METRIC": "COSINE"}
redis.execute_command("FT.CREATE i SCHEMA v VECTOR HNSW 6 TYPE FLOAT32 DIM 768 DISTANCE_METRIC COSINE")
pinecone.create_index("docs", 768, metric="cosine")
thumb = {"size": 768}
d = 768
index = faiss.IndexFlatIP(d)
size = 768
params = VectorParams(size=size, distance=Distance.COSINE)
"""


def test_widths_in_store_code_without_a_model_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Env defaults, settings fields, store keywords, REST bodies and Redis schemas in files that never
    name the model: the byte test must let each through (issue 12: widths tied by their context)."""
    (tmp_path / "model.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n')
    (tmp_path / "stores.py").write_text(STORES_PY)
    (tmp_path / "schema.ts").write_text(
        'export const docs = pgTable("docs", { embedding: vector("embedding", { dimensions: 768 }) });\n'
        'const s = new Schema([new Field("v", new FixedSizeList(768, new Field("i", new Float32())))]);\n'
    )
    (tmp_path / "docker-compose.yml").write_text("services:\n  api:\n    environment:\n    - VECTOR_DIM=768")
    (tmp_path / "redis.sh").write_text("redis-cli FT.CREATE i SCHEMA v VECTOR FLAT 6 TYPE FLOAT32 DIM 768\n")
    (tmp_path / "schema.cql").write_text("CREATE TABLE d (id int PRIMARY KEY, e VECTOR<FLOAT, 768>);\n")
    (tmp_path / "duck.sql").write_text("CREATE TABLE d (e FLOAT[768]);\nSELECT x[768] FROM d;\n")
    (tmp_path / "doc.sd").write_text("field embedding type tensor<float>(x[768]) {\n")
    (tmp_path / "fields.py").write_text("embedding: conlist(float, min_length=768, max_length=768)\n")
    (tmp_path / "index.cypher").write_text("OPTIONS {indexConfig: {`vector.dimensions`: 768}}\n")
    code = main(["plan", "--format", "json", str(tmp_path)])
    found = {(f["path"], f["line"], f["code"]) for f in json.loads(capsys.readouterr().out)["findings"]}
    assert code == 1
    assert found == {
        ("model.py", 1, "JM101"),
        ("stores.py", 5, "JM403"),
        ("stores.py", 6, "JM403"),
        ("stores.py", 7, "JM403"),
        ("stores.py", 8, "JM402"),
        ("stores.py", 9, "JM402"),
        ("stores.py", 10, "JM402"),
        ("stores.py", 11, "JM402"),
        ("stores.py", 12, "JM402"),
        ("stores.py", 14, "JM403"),  # a plain name that a FAISS index takes as its width
        ("stores.py", 16, "JM403"),  # ... and Qdrant's VectorParams
        ("schema.ts", 1, "JM401"),
        ("schema.ts", 2, "JM402"),
        ("docker-compose.yml", 4, "JM403"),
        ("redis.sh", 1, "JM402"),
        ("schema.cql", 1, "JM401"),
        ("duck.sql", 1, "JM401"),
        ("doc.sd", 1, "JM401"),
        ("fields.py", 1, "JM403"),
        ("index.cypher", 1, "JM402"),
    }


def test_json_samples_in_markdown_are_not_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A README's sample response (`"embedding_dimension": 768,` in a json block) is captured output, while
    an env block a user copies (`EMBEDDING_DIM=768`) is a setting (issue 12: logs are not code)."""
    (tmp_path / "model.py").write_text('MODEL = "jina-embeddings-v2-base-en"\n')
    (tmp_path / "README.md").write_text(
        '```json\n{\n  "embedding_dimension": 768,\n  "documents": 12\n}\n```\n\n'
        "```bash\nEMBEDDING_DIM=768\n```\n"
    )
    main(["plan", "--format", "json", str(tmp_path)])
    found = {(f["path"], f["line"]) for f in json.loads(capsys.readouterr().out)["findings"]}
    assert found == {("model.py", 1), ("README.md", 9)}


def test_a_chunking_tokenizer_does_not_claim_the_schema(tmp_path: Path) -> None:
    """A file that loads another model's tokenizer (for chunking) still stores v2 vectors; a file that
    loads another embedding model sizes its schema for that model (issue 12 labels: yucl80/ai_demo)."""
    from jmigrate.scan.plan import plan

    (tmp_path / "config.py").write_text('MODEL = "jinaai/jina-embeddings-v2-base-en"\n')
    (tmp_path / "store.py").write_text(
        'tok = AutoTokenizer.from_pretrained("bert-base-uncased")\n'
        'client.create_collection("c", vectors_config=VectorParams(size=768, distance=Distance.COSINE))\n'
    )
    (tmp_path / "other.py").write_text(
        'model = AutoModel.from_pretrained("microsoft/codebert-base")\n'
        'client.create_collection("c", vectors_config=VectorParams(size=768, distance=Distance.COSINE))\n'
    )
    found = {(f.path, f.line, f.code) for f in plan(tmp_path).findings}
    assert ("store.py", 2, "JM402") in found
    assert not any(path == "other.py" for path, _, _ in found)


def test_widths_in_a_module_that_imports_the_v2_model(tmp_path: Path) -> None:
    """A test or index module that never says "jina" but imports the model from the repository's config:
    its asserted shapes and zero vectors are the v2 model's (as if it named it), other numbers are not."""
    from jmigrate.scan.plan import plan

    (tmp_path / "config.py").write_text('EMBED_MODEL = "jinaai/jina-embeddings-v2-base-en"\n')
    (tmp_path / "test_embed.py").write_text(
        "from config import EMBED_MODEL\n"
        "from sentence_transformers import SentenceTransformer\n"
        "model = SentenceTransformer(EMBED_MODEL, trust_remote_code=True)\n"
        "\n"
        "def test_width():\n"
        '    vectors = model.encode(["a"])\n'
        "    assert vectors.shape == (1, 768)\n"
        "    blank = [0.0] * 768\n"
        "    assert len(texts) == 768\n"
    )
    (tmp_path / "unrelated.py").write_text("def test_width(vectors):\n    assert vectors.shape == (1, 768)\n")
    found = {(f.path, f.line) for f in plan(tmp_path).findings if f.code == "JM403"}
    assert found == {("test_embed.py", 7), ("test_embed.py", 8)}


def test_a_v3_project_reports_schemas_and_its_own_settings_only(tmp_path: Path) -> None:
    """Once only v3 is named, a 768/512 vector schema is unfinished migration work, and so are a width
    setting in the file that names v3 and settings that say they size embeddings (EMBEDDING_DIM); a bare
    `dimension = 512` / `DIM=768` elsewhere is some other vector's (issue 12 labels: yucl80/ai_demo)."""
    from jmigrate.scan.plan import plan

    (tmp_path / "app.py").write_text('MODEL = "jina-embeddings-v3"\nEMBEDDING_DIM = 768\n')
    (tmp_path / "entities.py").write_text("dimension = 512\nindex = faiss.IndexFlatL2(dimension)\n")
    (tmp_path / "schema.sql").write_text("CREATE TABLE d (embedding vector(768));\n")
    (tmp_path / "settings.env").write_text("EMBEDDING_DIM=768\nDIM=768\n")
    found = {(f.path, f.line, f.code) for f in plan(tmp_path).findings if f.code.startswith("JM4")}
    assert found == {("app.py", 2, "JM403"), ("schema.sql", 1, "JM401"), ("settings.env", 1, "JM403")}


@pytest.mark.parametrize("value", ["¹", "٧٦٨", " 768 ", "0768", "7_68", "768" * 3])
def test_digit_strings_never_crash(tmp_path: Path, value: str) -> None:
    """Strings that look like digits to str.isdigit() but not to int() (superscripts) are not widths."""
    from jmigrate.scan.plan import plan

    (tmp_path / "app.py").write_text(
        f'MODEL = "jinaai/jina-embeddings-v2-base-en"\nEMBED_DIM = int(os.getenv("EMBED_DIM", {value!r}))\n',
        encoding="utf-8",
    )
    found = [f for f in plan(tmp_path).findings if f.code == "JM403"]
    assert len(found) == (1 if value.strip() in ("768", "0768") else 0)


def test_the_message_names_the_model_of_that_width(tmp_path: Path) -> None:
    """A file naming small-en holding the 768 schema of the project's base-en names base-en, not v3."""
    from jmigrate.scan.plan import plan

    (tmp_path / "a.py").write_text('MODEL = "jinaai/jina-embeddings-v2-base-en"\n')
    (tmp_path / "b.py").write_text(
        'SMALL = "jinaai/jina-embeddings-v2-small-en"\n'
        'c.create_collection("d", vectors_config=VectorParams(size=768, distance=Distance.COSINE))\n'
    )
    [width] = [f for f in plan(tmp_path).findings if f.code == "JM402"]
    assert "the width of jina-embeddings-v2-base-en" in width.message


def test_a_schema_beside_base_code_stays(tmp_path: Path) -> None:
    """The project moves base-en to v3 but keeps base-code: the code index's 768 (in the file that names
    base-code) stays, the documents' 768 goes."""
    from jmigrate.scan.plan import plan

    (tmp_path / "docs.py").write_text(
        'MODEL = "jinaai/jina-embeddings-v2-base-en"\n'
        'c.create_collection("docs", vectors_config=VectorParams(size=768, distance=Distance.COSINE))\n'
    )
    (tmp_path / "code_index.py").write_text(
        'CODE_MODEL = "jinaai/jina-embeddings-v2-base-code"\n'
        'c.create_collection("code", vectors_config=VectorParams(size=768, distance=Distance.COSINE))\n'
    )
    (tmp_path / "code.sql").write_text(
        "-- vectors of jina-embeddings-v2-base-code\nCREATE TABLE code (embedding vector(768));\n"
    )
    found = {(f.path, f.line) for f in plan(tmp_path).findings if f.code.startswith("JM4")}
    assert found == {("docs.py", 2)}
