"""Revision pins of a v2 repository (JM106): the pin's line is reported, and the pinned id is not renamed
alone (a renamed id would meet a revision v3 does not have, and a later plan would no longer see the pin)."""

from __future__ import annotations

from pathlib import Path

from jmigrate.scan.apply import apply
from jmigrate.scan.finding import Applicability
from jmigrate.scan.plan import plan

TEI = (
    "model=jinaai/jina-embeddings-v2-base-en\n"
    "revision=refs/pr/25\n"
    "docker run ghcr.io/huggingface/text-embeddings-inference:1.5 --model-id $model --revision $revision\n"
)
PY = (
    "from sentence_transformers import SentenceTransformer\n"
    'MODEL = "jinaai/jina-embeddings-v2-small-en"\n'
    'PIN = "0f2a6c1"\n'
    "model = SentenceTransformer(MODEL, revision=PIN, trust_remote_code=True)\n"
    "vectors = model.encode(texts)\n"
)


def test_the_pin_line_is_reported_and_the_pinned_id_is_left_to_a_person(tmp_path: Path) -> None:
    (tmp_path / "serve.sh").write_text(TEI, encoding="utf-8")
    (tmp_path / "embed.py").write_text(PY, encoding="utf-8")
    found = {(f.path, f.line, f.code): f for f in plan(tmp_path).findings}
    assert ("serve.sh", 2, "JM106") in found and ("embed.py", 3, "JM106") in found
    assert "refs/pr/25" in found["serve.sh", 2, "JM106"].message
    for key in (("serve.sh", 1, "JM101"), ("embed.py", 2, "JM101")):
        assert found[key].applicability is Applicability.MANUAL and not found[key].edits
    # No line without a pin or an id is reported (the docker line reads both through variables).
    assert not [k for k in found if k[0] == "serve.sh" and k[1] == 3]


def test_apply_leaves_a_pinned_id_and_its_pin_reported(tmp_path: Path) -> None:
    (tmp_path / "serve.sh").write_text(TEI, encoding="utf-8")
    (tmp_path / "embed.py").write_text(PY, encoding="utf-8")
    apply(plan(tmp_path), unsafe=True)
    again = {(f.path, f.line, f.code) for f in plan(tmp_path).findings}
    assert {("serve.sh", 2, "JM106"), ("embed.py", 3, "JM106"), ("serve.sh", 1, "JM101")} <= again
    assert (tmp_path / "serve.sh").read_text(encoding="utf-8") == TEI
