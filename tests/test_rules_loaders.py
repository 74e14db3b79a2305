"""Where JM308-JM310 sit: on a line that must be edited (issue 12: a loader line that needs no edit was a
false alarm on real code)."""

from __future__ import annotations

from pathlib import Path

from jmigrate.scan.apply import apply
from jmigrate.scan.plan import plan


def lines(root: Path, code: str) -> set[tuple[str, int]]:
    return {(f.path, f.line) for f in plan(root).findings if f.code == code}


def test_an_id_written_in_another_module_leaves_the_loader_line_alone(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text('MODEL = "jinaai/jina-embeddings-v2-base-en"\n', encoding="utf-8")
    (tmp_path / "trainer.py").write_text(
        "from transformers import AutoModel\nfrom config import MODEL\n\n"
        "class Trainer:\n    def __init__(self):\n"
        "        self.model = AutoModel.from_pretrained(\n"
        "            MODEL,\n            trust_remote_code=True,\n        )\n",
        encoding="utf-8",
    )
    assert lines(tmp_path, "JM309") == set()
    assert ("config.py", 1) in lines(tmp_path, "JM101")


def test_the_advice_moves_to_the_id_line_of_the_same_file(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from sentence_transformers import SentenceTransformer\n"
        'model_id = "jinaai/jina-embeddings-v2-small-en"\n'
        "tok_path = model_id\n"
        "model = SentenceTransformer(model_id, trust_remote_code=True)\n"
        "other = SentenceTransformer(tok_path, trust_remote_code=True)\n",
        encoding="utf-8",
    )
    found = [f for f in plan(tmp_path).findings if f.code == "JM308"]
    assert [(f.path, f.line) for f in found] == [("app.py", 2)]  # one finding for both loaders
    assert "line 4" in found[0].message and "line 5" in found[0].message
    assert found[0].recommendation.get("licence")


def test_a_loader_without_trust_remote_code_is_its_own_edit(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from sentence_transformers import SentenceTransformer\n"
        'model_id = "jinaai/jina-embeddings-v2-small-en"\n'
        "model = SentenceTransformer(model_id)\n",
        encoding="utf-8",
    )
    assert lines(tmp_path, "JM308") == {("app.py", 3)}


def test_a_local_copy_named_like_v2_is_a_v2_loader_and_its_calls_need_a_task(tmp_path: Path) -> None:
    (tmp_path / "chunk.py").write_text(
        "from transformers import AutoModel\n"
        "model = AutoModel.from_pretrained('../late_chunking/jina-v2-zh', trust_remote_code=True)\n"
        "vectors = model.encode(chunks)\n",
        encoding="utf-8",
    )
    found = {(f.code, f.line) for f in plan(tmp_path).findings}
    assert {("JM107", 2), ("JM504", 3)} <= found
    jm107 = next(f for f in plan(tmp_path).findings if f.code == "JM107")
    assert "jina-embeddings-v2-base-zh" in jm107.message and "confirm" in jm107.message


def test_after_apply_an_importer_of_the_renamed_model_is_still_checked(tmp_path: Path) -> None:
    # The importer never says "jina": it is parsed because config.py exports the model name, which must
    # stay true once apply renamed it to v3, or the second plan misses the unfinished v3 code (false zero).
    (tmp_path / "config.py").write_text('MODEL = "jinaai/jina-embeddings-v2-base-en"\n', encoding="utf-8")
    (tmp_path / "chunks.py").write_text(
        "from transformers import AutoTokenizer\nfrom config import MODEL\n\n"
        "tokenizer = AutoTokenizer.from_pretrained(MODEL)\n"
        "sep = tokenizer.convert_tokens_to_ids('[SEP]')\n",
        encoding="utf-8",
    )
    assert ("chunks.py", 5) in lines(tmp_path, "JM314")
    apply(plan(tmp_path), unsafe=True)
    assert "jina-embeddings-v3" in (tmp_path / "config.py").read_text(encoding="utf-8")
    assert ("chunks.py", 5) in lines(tmp_path, "JM314")
