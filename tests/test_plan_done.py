"""Issue 12, "done must mean done": plan -> apply --unsafe -> plan converges to findings a person must act on,
never to a false zero; jmigrate's own outputs in the scanned folder are neither findings nor edited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import snapshot_tree

from jmigrate.scan.apply import apply
from jmigrate.scan.finding import Applicability
from jmigrate.scan.plan import plan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("name", ["repo", "rules"])
def test_apply_unsafe_then_plan_leaves_only_manual_findings_never_zero(tmp_path: Path, name: str) -> None:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    first = plan(root)
    assert any(f.applicability is not Applicability.MANUAL for f in first.findings)
    apply(first, unsafe=True)
    second = plan(root)
    assert second.findings, "a migration that still encodes v3 without a task is not done"
    assert all(f.applicability is Applicability.MANUAL for f in second.findings)
    assert any(f.code == "JM502" for f in second.findings) or any(
        f.code == "JM201" and "v3" in f.message for f in second.findings
    )
    # A second apply changes nothing: the loop has converged to what needs a human.
    before = snapshot_tree(root)
    apply(second, unsafe=True)
    assert snapshot_tree(root) == before
    assert {(f.code, f.path, f.line) for f in plan(root).findings} == {
        (f.code, f.path, f.line) for f in second.findings
    }


def test_own_outputs_in_the_scanned_folder_are_skipped_and_never_edited(tmp_path: Path, cli) -> None:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "repo", root)
    baseline = {(f.code, f.path, f.line) for f in plan(root).findings}
    # The README's own example writes the SARIF report into the folder it scans.
    for fmt, name in (("sarif", "jmigrate.sarif"), ("json", "plan.json"), ("markdown", "plan.md")):
        assert cli("plan", root, "--format", fmt, "-o", root / name).code == 1
    (root / "plan.txt").write_text(cli("plan", root).out, encoding="utf-8")
    index = root / "v3-index"
    index.mkdir()
    (index / "manifest.json").write_text(
        json.dumps({"format": "jmigrate-index", "model": "jina-embeddings-v2-base-en", "dims": 768}),
        encoding="utf-8",
    )
    outputs = ["jmigrate.sarif", "plan.json", "plan.md", "plan.txt", "v3-index/manifest.json"]
    result = plan(root)
    assert {(f.code, f.path, f.line) for f in result.findings} == baseline
    assert {s.path for s in result.skipped} >= set(outputs)
    kept = {p: (root / p).read_bytes() for p in outputs}
    apply(result, unsafe=True)
    assert {p: (root / p).read_bytes() for p in outputs} == kept


def test_a_v2_width_left_in_a_schema_of_a_v3_project_is_a_finding(tmp_path: Path) -> None:
    # After `apply` renamed every model, the schema still says 768: v3 returns 1024 unless asked otherwise.
    schema = "CREATE TABLE d (id int, embedding vector(768));\n"
    (tmp_path / "schema.sql").write_text(schema, encoding="utf-8")
    (tmp_path / "app.py").write_text('MODEL = "jina-embeddings-v3"\n', encoding="utf-8")
    [width] = plan(tmp_path).findings
    assert width.code == "JM401" and "unless dimensions=768 is requested" in width.message
    # Requesting dimensions=768 from v3 keeps the schema on purpose: nothing to report.
    app = 'MODEL = "jina-embeddings-v3"\nBODY = {"dimensions": 768}\n'
    (tmp_path / "app.py").write_text(app, encoding="utf-8")
    assert plan(tmp_path).findings == []


def test_moving_a_small_model_to_v3_says_it_is_a_larger_model(tmp_path: Path) -> None:
    src = "from sentence_transformers import SentenceTransformer\n"
    src += 'm = SentenceTransformer("jinaai/jina-embeddings-v2-small-en")\n'
    (tmp_path / "s.py").write_text(src, encoding="utf-8")
    [jm101] = plan(tmp_path / "s.py", select=["JM101"]).findings
    assert "33M parameters" in jm101.fix_title and "572M" in jm101.recommendation["size_change"]


def test_a_model_constant_imported_from_another_module_is_followed(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "config.py").write_text('EMBED_MODEL = "jina-embeddings-v2-base-en"\n')
    (tmp_path / "main.py").write_text(
        "from app.config import EMBED_MODEL\nfrom langchain_community.embeddings import JinaEmbeddings\n"
        "e = JinaEmbeddings(model_name=EMBED_MODEL)\n"
    )
    (tmp_path / "app" / "rag.py").write_text(
        "from .config import EMBED_MODEL\nfrom langchain_community.embeddings import JinaEmbeddings\n"
        "e = JinaEmbeddings(model_name=EMBED_MODEL)\n"
    )
    found = {(f.code, f.path) for f in plan(tmp_path).findings}
    assert {("JM301", "main.py"), ("JM301", "app/rag.py")} <= found
    # Once the constant says v3 (as after `apply`), the stale value is not reused from a cache.
    (tmp_path / "app" / "config.py").write_text('EMBED_MODEL = "jina-embeddings-v3"  # now v3\n')
    assert not any(f.code == "JM301" for f in plan(tmp_path).findings)
