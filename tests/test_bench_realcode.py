"""The real-code scorer (bench/bench_realcode.py) counts what it says it counts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_realcode.py"


@pytest.fixture(scope="module")
def scorer():
    spec = importlib.util.spec_from_file_location("bench_realcode", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_realcode"] = module
    spec.loader.exec_module(module)
    return module


APP = '''from sentence_transformers import SentenceTransformer

MODEL = "jinaai/jina-embeddings-v2-base-en"  # jina-embeddings-v2-base-en gives 768 dims
model = SentenceTransformer(MODEL, trust_remote_code=True)
CHUNK = 512
'''
CODE = 'CODE_MODEL = "jinaai/jina-embeddings-v2-base-code"\n'


def make_repo(root: Path) -> str:
    root.mkdir(parents=True)
    (root / "app.py").write_text(APP)
    (root / "code.py").write_text(CODE)
    (root / "vendor").mkdir()
    (root / "vendor" / "lib.py").write_text('M = "jina-embeddings-v2-small-en"\n')
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    return head.stdout.strip()


def write_labels(folder: Path, commit: str, labels: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme__demo.json").write_text(json.dumps({
        "repo": "acme/demo", "commit": commit, "languages": ["python"], "exclude": ["vendor/**"],
        "labels": labels}))


def test_scores_plan_and_regex_on_the_same_labelled_lines(tmp_path, scorer, capsys):
    commit = make_repo(tmp_path / "repos" / "acme__demo")
    write_labels(tmp_path / "labels", commit, [
        {"path": "app.py", "line": 3, "kind": "must", "class": "model", "note": "constant"},
        {"path": "app.py", "line": 5, "kind": "near", "class": "other-model", "note": "chunk size"},
        {"path": "app.py", "line": 1, "kind": "must", "class": "integration", "note": "made up, to miss"},
        {"path": "code.py", "line": 1, "kind": "keep", "class": "model", "note": "code model"},
    ])
    out_json = tmp_path / "scores.json"
    code = scorer.main(["--labels", str(tmp_path / "labels"), "--repos", str(tmp_path / "repos"), "--show",
                        "--scores-json", str(out_json), "--json-out", str(tmp_path / "rows.json"),
                        "--markdown", str(tmp_path / "realcode.md")])
    assert code == 0
    scores = json.loads(out_json.read_text())[0]
    # regex: line 3 (name + 768 in the comment) and line 5 (512 in a file naming a model); code.py is keep,
    # vendor/ is excluded: TP 1 (line 3), FP 1 (line 5), FN 1 (line 1).
    assert scores["regex"] == {"tp": 1, "fp": 1, "fn": 1}
    # plan finds line 3 (any other line it flags is a false alarm until labelled) and misses line 1.
    assert scores["plan"]["tp"] == 1 and scores["plan"]["fn"] == 1
    rows = {row["part"]: row for row in json.loads((tmp_path / "rows.json").read_text())}
    assert rows["recall on real code"]["baseline_figure"] == "0.500 (1/2)"
    # plan misses line 1, so recall is 1/2: below the aim whatever plan's precision is
    assert rows["recall on real code"]["met"] is False
    assert rows["recall on real code"]["ours_figure"] == "0.500 (1/2)"
    md = (tmp_path / "realcode.md").read_text()
    assert "| [acme/demo](https://github.com/acme/demo) |" in md and "miss: `app.py:1 must/integration" in md
    out = capsys.readouterr().out
    assert "plan miss        app.py:1 must/integration: made up, to miss" in out
    assert "TOTAL (1 repositories)" in out


def test_refuses_a_checkout_at_another_commit_and_bad_labels(tmp_path, scorer, capsys):
    make_repo(tmp_path / "repos" / "acme__demo")
    write_labels(tmp_path / "labels", "0" * 40, [])
    assert scorer.main(["--labels", str(tmp_path / "labels"), "--repos", str(tmp_path / "repos")]) == 0
    assert "skipped acme/demo: " in capsys.readouterr().out
    write_labels(tmp_path / "labels", "0" * 40, [{"path": "a", "line": 1, "kind": "must", "class": "nope"}])
    assert scorer.main(["--labels", str(tmp_path / "labels"), "--repos", str(tmp_path / "repos")]) == 2
    assert "class 'nope' is not one of" in capsys.readouterr().err


def test_labels_in_the_repository_are_valid(scorer):
    # Every shipped label file parses, names a 40-hex commit and uses only the documented kinds/classes.
    for file in sorted((BENCH.parent / "realcode" / "labels").glob("*.json")):
        labels = scorer.load_labels(file)
        assert file.name == labels.dirname + ".json"
        assert labels.labels, file.name
