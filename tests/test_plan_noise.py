"""Issue 12, less noise: a concise one-line-per-finding format and skipped binaries as one count."""

from __future__ import annotations

import re
from pathlib import Path


def test_concise_format_is_one_line_per_finding(tmp_path: Path, cli) -> None:
    (tmp_path / "app.py").write_text('M = "jina-embeddings-v2-base-en"\nN = "jina-embeddings-v2-small-en"\n')
    res = cli("plan", tmp_path, "--format", "concise")
    assert res.code == 1
    lines = res.out.splitlines()
    assert len(lines) == 2
    assert all(re.fullmatch(r"app\.py:\d+:\d+: JM101 \[!\] .+", line) for line in lines)


def test_skipped_binaries_are_one_count_unless_verbose(tmp_path: Path, cli) -> None:
    (tmp_path / "app.py").write_text('M = "jina-embeddings-v2-base-en"\n')
    for i in range(3):
        (tmp_path / f"img{i}.bin").write_bytes(b"\x89PNG\x00\x00")
    quiet = cli("plan", tmp_path).out
    assert "3 binary files (--verbose lists them)" in quiet and "img0.bin" not in quiet
    verbose = cli("plan", tmp_path, "--verbose").out
    assert all(f"img{i}.bin: binary" in verbose for i in range(3))


def test_a_reindex_index_is_one_store_and_a_v3_one_is_not_re_embedded(tmp_path: Path, cli) -> None:
    import shutil

    import jmigrate

    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "repo", repo)
    assert cli("reindex", repo / "data" / "kb_export.parquet", "--out", repo / "kb-v3", "--encoder", "fake",
               "--quiet").code == 0
    stores = {s["path"]: s for s in jmigrate.plan(repo).stores}
    # One entry for the index folder (not one per shard), and no command: it already holds v3 vectors.
    assert "kb-v3" in stores and not any(p.startswith("kb-v3/") for p in stores)
    assert stores["kb-v3"]["reindex_command"] == "" and "nothing to re-embed" in stores["kb-v3"]["notes"][-1]
    # The v2 store's output folder is a sibling, never inside an index.
    command = stores["data/kb_export.parquet"]["reindex_command"]
    assert "--out" in command and "kb-v3/" not in command


def test_the_checklist_lists_only_the_steps_that_apply(tmp_path: Path) -> None:
    import jmigrate
    from jmigrate.scan.render.summary import migration_checklist

    (tmp_path / "a.py").write_text('M = "jina-embeddings-v2-base-en"\n')
    items = migration_checklist(jmigrate.plan(tmp_path))
    assert any("Pass a task" in i for i in items)
    assert not any("normalized" in i or "CC BY-NC" in i or "code corpora" in i for i in items)
    (tmp_path / "a.py").write_text(
        'import requests\nrequests.post("https://api.jina.ai/v1/embeddings", json={"model": '
        '"jina-embeddings-v2-base-en", "input": x, "normalized": True})\n'
        "from sentence_transformers import SentenceTransformer\n"
        'SentenceTransformer("jinaai/jina-embeddings-v2-base-en")\n'
    )
    items = migration_checklist(jmigrate.plan(tmp_path))
    assert any("normalized" in i for i in items) and any("CC BY-NC" in i for i in items)
    (tmp_path / "a.py").write_text('M = "jina-embeddings-v2-base-code"\n')
    assert [i for i in migration_checklist(jmigrate.plan(tmp_path)) if "Pass a task" in i] == []
