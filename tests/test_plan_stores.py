"""`plan` reports vector stores found on disk, and its JSON carries settings `reindex --config` reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import jmigrate
from jmigrate.cli.app import main

REPO = Path(__file__).resolve().parents[1] / "fixtures" / "repo"


def test_library_plan_lists_the_fixture_store_with_its_reindex_command() -> None:
    result = jmigrate.plan(REPO)
    [store] = result.stores
    assert store["path"] == "data/kb_export.parquet"
    assert (store["kind"], store["rows"], store["dims"]) == ("parquet", 8, 768)
    assert store["likely_models"] == ["jina-embeddings-v2-base-en"]
    assert "jmigrate reindex" in store["reindex_command"] and "--text-column text" in store["reindex_command"]
    assert jmigrate.plan(REPO, stores=False).stores == []


def test_text_and_markdown_reports_show_the_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(REPO)]) == 1
    text = capsys.readouterr().out
    assert "Vector stores on disk" in text
    assert "data/kb_export.parquet: parquet, 8 rows, 768 dims; likely jina-embeddings-v2-base-en" in text
    assert main(["plan", str(REPO), "--format", "markdown"]) == 1
    assert "### Vector stores to re-embed" in capsys.readouterr().out


def test_a_v2_store_alone_is_work_left(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Code already on v3, but 512-dim small-en vectors still on disk: plan must not say "all done".
    (tmp_path / "app.py").write_text('MODEL = "jina-embeddings-v3"\n', encoding="utf-8")
    m = np.random.default_rng(0).standard_normal((4, 512)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", m)
    assert main(["plan", str(tmp_path), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["findings"] == []
    assert [s["path"] for s in data["stores"]] == ["vectors.npy"]
    assert "jina-embeddings-v2-small-en" in data["stores"][0]["likely_models"]
    (tmp_path / "vectors.npy").unlink()
    assert main(["plan", str(tmp_path)]) == 0


def test_reindex_takes_its_settings_from_a_plan_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(repo), "--format", "json", "--output", str(plan_file)]) == 1
    capsys.readouterr()
    assert json.loads(plan_file.read_text())["reindex"]["task"] == "retrieval.passage"
    assert main(["reindex", str(repo / "data" / "kb_export.parquet"), "--out", str(tmp_path / "v3"),
                 "--config", str(plan_file), "--dry-run", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "jina-embeddings-v3" and summary["task"] == "retrieval.passage"
    assert summary["dimensions"] == 1024
