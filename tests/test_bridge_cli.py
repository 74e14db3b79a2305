"""`jmigrate bridge fit|show` through the CLI on the index kinds `verify` opens, with the fake encoder.

The fake encoder's "v2" and "v3" vectors are unrelated hashes, so every bridge here fits poorly: that is
what the poor-fit warning is checked against. The real-model evidence is in test_bridge_real.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jmigrate.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fixtures" / "corpus" / "multilingual.jsonl"
V2 = "jina-embeddings-v2-base-en"


def _reindex(out: Path, *extra: str) -> None:
    assert main(["reindex", str(CORPUS), "--out", str(out), "--quiet", "--encoder", "fake", "--model", V2,
                 *extra]) == 0


def _flat(text: str) -> str:
    # Rich wraps stderr at the console width; the message is one logical line either way.
    return " ".join(text.split())


def _fit(*args: str) -> int:
    return main(["bridge", "fit", "--encoder", "fake", "--quiet", *args])


def test_fit_from_a_reindex_folder_writes_the_bridge_and_warns_on_a_poor_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _reindex(tmp_path / "v2")
    capsys.readouterr()
    assert _fit("--v2", str(tmp_path / "v2"), "--sample", "30", "--out", str(tmp_path / "b"),
                "--format", "json") == 0
    out, err = capsys.readouterr()
    m = json.loads(out)
    assert m["source"] == {"model": "jina-embeddings-v3", "task": "retrieval.query", "dimensions": 1024}
    assert m["target"] == {"model": V2, "task": None, "dimensions": 768}
    assert m["index"]["kind"] == "jmigrate-index" and m["index"]["documents"] == 36
    assert m["sample"]["pairs"] == 30 and m["sample"]["train"] == 24 and m["sample"]["held_out"] == 6
    assert m["poor_fit"] is True and "warning: poor held-out fit" in err
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["bias.npy", "manifest.json", "weights.npy"]
    assert np.load(tmp_path / "b" / "weights.npy", allow_pickle=False).shape == (1024, 768)

    assert main(["bridge", "show", str(tmp_path / "b")]) == 0
    shown = capsys.readouterr().out
    assert "maps     jina-embeddings-v3, task retrieval.query, 1024 dims" in shown
    assert f"into     {V2}, no task, 768 dims" in shown and "POOR" in shown


def test_matryoshka_width_and_alternative_methods_are_recorded(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _reindex(tmp_path / "v2")
    capsys.readouterr()
    assert _fit("--v2", str(tmp_path / "v2"), "--sample", "36", "--dimensions", "256", "--method", "auto",
                "--out", str(tmp_path / "b"), "--format", "json") == 0
    m = json.loads(capsys.readouterr().out)
    assert m["source"]["dimensions"] == 256
    assert [c["method"] for c in m["candidates"]] == ["procrustes", "ridge", "low-rank"]


def test_a_chunked_index_pairs_each_chunk_with_its_own_text(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _reindex(tmp_path / "v2", "--chunk-by", "tokens", "--chunk-size", "16")
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (tmp_path / "v2").glob("*.parquet"))
    assert rows > 36
    capsys.readouterr()
    assert _fit("--v2", str(tmp_path / "v2"), "--sample", str(rows), "--out", str(tmp_path / "b"),
                "--format", "json") == 0
    m = json.loads(capsys.readouterr().out)
    assert m["sample"]["pairs"] == rows and m["index"]["rows"] == rows and m["index"]["documents"] == 36


def test_an_npy_index_needs_texts_from_a_corpus_file(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    ids = [json.loads(line)["id"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    np.save(tmp_path / "v2.npy", rng.standard_normal((len(ids), 768)).astype(np.float32))
    (tmp_path / "v2.ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    common = ["--v2", str(tmp_path / "v2.npy"), "--v2-model", V2, "--sample", "36"]
    assert _fit(*common, "--out", str(tmp_path / "none")) == 2
    assert "stores no text: pass --texts CORPUS" in _flat(capsys.readouterr().err)
    assert not (tmp_path / "none").exists()  # a refused fit leaves nothing behind
    assert _fit(*common, "--texts", str(CORPUS), "--out", str(tmp_path / "b")) == 0
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["index"]["kind"] == "npy"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "bogus"], "--method must be one of"),
        (["--embed-as", "both"], "--embed-as must be one of"),
        (["--sample", "0"], "--sample must be at least 1"),
        (["--sample", "10"], "10 pairs are too few"),
        (["--dimensions", "2048"], "produces at most 1024"),
        (["--model", V2], "already holds jina-embeddings-v2-base-en vectors"),
        (["--encoder", "nope"], "--encoder must be one of"),
        (["--format", "xml"], "--format must be text or json"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                          message: str) -> None:
    _reindex(tmp_path / "v2")
    capsys.readouterr()
    assert _fit("--v2", str(tmp_path / "v2"), "--out", str(tmp_path / "b"), *args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and message in _flat(err), err
    assert not (tmp_path / "b").exists()


def test_help_and_unreadable_bridges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bridge", "fit", "-h"]) == 0
    assert "--sample" in capsys.readouterr().out
    assert main(["bridge", "show", str(tmp_path)]) == 2
    assert "not a bridge folder" in _flat(capsys.readouterr().err)


QUERIES = ROOT / "fixtures" / "verify" / "queries.jsonl"
QRELS = ROOT / "fixtures" / "verify" / "qrels.tsv"


def _verify(tmp_path: Path, *extra: str) -> int:
    return main(["verify", "--v2", str(tmp_path / "v2"), "--v3", str(tmp_path / "v3"),
                 "--queries", str(QUERIES), "--qrels", str(QRELS), "--encoder", "fake", "--format", "json",
                 "-q", *extra])


def test_verify_bridge_adds_a_third_system_and_embeds_queries_at_the_bridges_width(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _reindex(tmp_path / "v2")
    assert main(["reindex", str(CORPUS), "--out", str(tmp_path / "v3"), "--quiet", "--encoder", "fake"]) == 0
    # Fitted for 256-dim v3 queries while the v3 index holds 1024: verify embeds the queries again for it.
    assert _fit("--v2", str(tmp_path / "v2"), "--sample", "36", "--dimensions", "256",
                "--out", str(tmp_path / "b")) == 0
    capsys.readouterr()
    code = _verify(tmp_path, "--bridge", str(tmp_path / "b"), "--run-dir", str(tmp_path / "runs"))
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == data["verdict"]["exit_code"]
    b = data["bridged"]
    assert b["source"]["dimensions"] == 256 and b["queries_from"].startswith("encoded: jina-embeddings-v3")
    assert set(b["vs_v2"]) == set(b["vs_v3"]) == set(data["comparison"]) == set(b["metrics"])
    assert b["poor_fit"] is True  # fake vectors: nothing to learn, and the report says so
    run = (tmp_path / "runs" / "bridged.run").read_text().splitlines()
    qids = {json.loads(q)["id"] for q in QUERIES.read_text().splitlines() if q.strip()}
    assert {line.split()[0] for line in run} == qids
    # The same call without --bridge has no third system (and its verdict text does not mention one).
    assert _verify(tmp_path) in (0, 1)
    plain = json.loads(capsys.readouterr().out)
    assert "bridged" not in plain and "Bridged" not in plain["verdict"]["text"]


def test_verify_refuses_a_bridge_fitted_for_another_index(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _reindex(tmp_path / "v2")
    assert main(["reindex", str(CORPUS), "--out", str(tmp_path / "v3"), "--quiet", "--encoder", "fake"]) == 0
    assert _fit("--v2", str(tmp_path / "v2"), "--sample", "36", "--out", str(tmp_path / "b")) == 0
    # The same corpus embedded again by another v2 model: another index, whatever its ids.
    _reindex(tmp_path / "other", "--model", "jina-embeddings-v2-small-en")
    capsys.readouterr()
    code = main(["verify", "--v2", str(tmp_path / "other"), "--v3", str(tmp_path / "v3"), "--queries",
                 str(QUERIES), "--encoder", "fake", "--bridge", str(tmp_path / "b"), "-q"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "model jina-embeddings-v2-small-en instead of jina-embeddings-v2-base-en" in _flat(err)


def test_fit_from_a_store_uri_and_verify_the_same_collection(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    lancedb = pytest.importorskip("lancedb")
    import pyarrow as pa

    docs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    m = np.random.default_rng(0).standard_normal((len(docs), 768)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    table = pa.table({"id": [d["id"] for d in docs], "content": [d["text"] for d in docs],
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), 768)})
    db = lancedb.connect(str(tmp_path / "lance"))
    db.create_table("docs", table)
    uri = f"lancedb://{tmp_path}/lance?table=docs"
    assert _fit("--v2", uri, "--v2-model", V2, "--sample", "36", "--out", str(tmp_path / "b"),
                "--format", "json") == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["index"]["path"] == uri and manifest["index"]["kind"] == "store:lancedb"
    assert manifest["sample"]["pairs"] == 36 and manifest["target"]["model"] == V2
    assert main(["bridge", "show", str(tmp_path / "b"), "--v2", uri, "-q"]) == 0

    assert main(["reindex", str(CORPUS), "--out", str(tmp_path / "v3"), "--quiet", "--encoder", "fake"]) == 0
    args = ["verify", "--v2", uri, "--v2-model", V2, "--v3", str(tmp_path / "v3"), "--queries", str(QUERIES),
            "--qrels", str(QRELS), "--encoder", "fake", "--bridge", str(tmp_path / "b"), "--format", "json",
            "-q"]
    capsys.readouterr()
    code = main(args)
    data = json.loads(capsys.readouterr().out)
    assert code == data["verdict"]["exit_code"] and "bridged" in data
    # The collection changes (one more document): the bridge no longer matches it.
    db.open_table("docs").add(pa.table({"id": ["new"], "content": ["ein neues Dokument"],
                                        "vector": pa.FixedSizeListArray.from_arrays(pa.array(m[0]), 768)}))
    assert main(args) == 2
    assert "content changed since the bridge was fitted" in _flat(capsys.readouterr().err)
    assert main(["bridge", "show", str(tmp_path / "b"), "--v2", uri, "-q"]) == 2


def test_fit_through_the_api_sends_the_query_task_and_width(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The loopback stub's vectors depend on (model, task, text, width). A "v2" index holding exactly the
    stub's v3 retrieval.query vectors at 768 dims is bridged perfectly only if `fit` sent that task and
    width; with --embed-as passage the same index is unrelated, and the fit says it is poor. (Random
    vectors fill all 768 dimensions, so the sample must be larger than that for any map to generalise.)"""
    import pyarrow as pa

    from jmigrate.testing.server import StubServer, stub_vectors

    texts = [f"document {i}: a note about topic {i % 13}" for i in range(1200)]
    m = stub_vectors("jina-embeddings-v3", texts, task="retrieval.query", dimensions=768)
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts,
                             "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), 768)}),
                   tmp_path / "v2.parquet")
    with StubServer(api_key="jina_test_key") as srv:
        common = ["--v2", str(tmp_path / "v2.parquet"), "--v2-model", V2, "--sample", "1200",
                  "--dimensions", "768", "--format", "json", "--api-url", srv.url,
                  "--api-key", "jina_test_key"]
        for embed_as, good in (("query", True), ("passage", False)):
            assert main(["bridge", "fit", "--encoder", "api", "-q", *common, "--embed-as", embed_as,
                         "--out", str(tmp_path / embed_as)]) == 0
            got = json.loads(capsys.readouterr().out)
            assert got["encoder"]["class"] == "JinaAPIEncoder"
            assert got["poor_fit"] is (not good), got["held_out"]
            if good:
                assert got["held_out"]["mean_cosine"] > 0.999 and got["held_out"]["recall_at_1"] == 1.0


def test_rows_without_text_or_with_a_zero_vector_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa

    m = np.random.default_rng(0).standard_normal((60, 768)).astype(np.float32)
    m[5] = 0.0  # a zero vector: nothing to pair with
    texts: list[str | None] = [f"text {i}" for i in range(60)]
    for i in (1, 2, 3):
        texts[i] = None
    texts[4] = "   "
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(60)], "text": pa.array(texts, pa.string()),
                             "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), 768)}),
                   tmp_path / "v2.parquet")
    assert _fit("--v2", str(tmp_path / "v2.parquet"), "--v2-model", V2, "--sample", "100",
                "--out", str(tmp_path / "b"), "--format", "json") == 0
    got = json.loads(capsys.readouterr().out)
    assert got["sample"]["skipped"] == {"no_text": 4, "bad_vector": 1}
    assert got["sample"]["pairs"] == 55 and got["sample"]["requested"] == 100
