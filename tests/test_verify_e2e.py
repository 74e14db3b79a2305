"""`reindex` then `verify` through the CLI on the multilingual fixture (support KB, chats, dialogue lines).

The vectors come from test encoders (the fake encoder, or the loopback API stub), not from Jina models,
so the metrics say nothing about v2 vs v3; what is checked is the pipeline a user runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jmigrate.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fixtures" / "corpus" / "multilingual.jsonl"
QUERIES = ROOT / "fixtures" / "verify" / "queries.jsonl"
QRELS = ROOT / "fixtures" / "verify" / "qrels.tsv"
V2 = "jina-embeddings-v2-base-en"
N_DOCS = sum(1 for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip())


def _reindex(out: Path, *extra: str) -> None:
    assert main(["reindex", str(CORPUS), "--out", str(out), "--quiet", *extra]) == 0


def test_reindex_fake_then_verify_with_chunked_v3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _reindex(tmp_path / "v2", "--encoder", "fake", "--model", V2)
    _reindex(tmp_path / "v3", "--encoder", "fake", "--chunk-by", "tokens", "--chunk-size", "16")
    capsys.readouterr()
    report = tmp_path / "report.html"
    code = main(
        [
            "verify",
            "--v2",
            str(tmp_path / "v2"),
            "--v3",
            str(tmp_path / "v3"),
            "--queries",
            str(QUERIES),
            "--qrels",
            str(QRELS),
            "--encoder",
            "fake",
            "--format",
            "json",
            "--report",
            str(report),
            "--run-dir",
            str(tmp_path / "runs"),
        ]
    )
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == data["verdict"]["exit_code"]
    assert data["v2"]["model"] == V2 and data["v2"]["query_task"] is None
    assert data["v3"]["task"] == "retrieval.passage" and data["v3"]["query_task"] == "retrieval.query"
    assert data["v2"]["documents"] == data["v3"]["documents"] == N_DOCS
    # test vectors are named as such in the verdict, the JSON and the report, in plain words
    assert data["verdict"]["stand_in"] == {"v2": "test vectors from `--encoder fake`",
                                           "v3": "test vectors from `--encoder fake`"}
    assert data["verdict"]["text"].startswith("Stand-in vectors: the v2 index holds test vectors")
    assert "say nothing about the quality of v2 or v3" in report.read_text()
    assert data["v3"]["vectors"] > N_DOCS  # chunked: several rows per document, ranked per document
    assert data["judged_queries"] == 16
    assert set(data["languages"]) == {"en", "de", "es", "fr", "zh", "ja", "nl", "pt"}
    assert [i for i in data["integrity"] if i["severity"] == "error"] == []
    for name in ("v2", "v3"):
        run = (tmp_path / "runs" / f"{name}.run").read_text().splitlines()
        per_query = [line.split()[2] for line in run if line.startswith("q1 ")]
        assert len(per_query) == N_DOCS == len(set(per_query))  # every document once, never a chunk twice
    assert "Where the two systems disagree most" in report.read_text()


def test_reindex_with_loopback_stub_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jmigrate.testing.server import StubServer

    with StubServer(api_key="jina_test_key") as srv:
        api = ["--encoder", "api", "--api-url", srv.url, "--api-key", "jina_test_key"]
        _reindex(tmp_path / "v2", *api, "--model", V2)
        _reindex(tmp_path / "v3", *api, "--dimensions", "512")
        capsys.readouterr()
        code = main(
            [
                "verify",
                "--v2",
                str(tmp_path / "v2"),
                "--v3",
                str(tmp_path / "v3"),
                "--queries",
                str(QUERIES),
                "--qrels",
                str(QRELS),
                *api,
                "--format",
                "json",
            ]
        )
        out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == data["verdict"]["exit_code"] and code in (0, 1)
    assert data["v3"]["dimensions"] == 512 and data["v3"]["query_model"] == "jina-embeddings-v3"
    assert data["v3"]["queries_from"] == "encoded: jina-embeddings-v3"
    stub_note = "vectors from the jmigrate loopback stub (served_model says so)"
    assert data["verdict"]["stand_in"]["v3"] == stub_note
    assert "the v3 index holds vectors from the jmigrate loopback stub" in data["verdict"]["text"]
    assert set(data["comparison"]) == {"nDCG@10", "Recall@10", "Recall@100", "MRR@10", "MAP"}
    for metric in data["comparison"].values():
        assert {"difference", "ci", "p_value"} <= set(metric)
    assert "jina_test_key" not in out + err
